"""The stack's S3 API serves what the platform needs of it beyond put/get/list: the
lake's lifecycle rule, the audit bucket's object lock, and lake objects whose bytes live
on disk rather than in the server's memory (devstack/s3_server.py says why it is moto)."""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest
from botocore.exceptions import ClientError

from flowgate.devstack import process, services, stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def s3(stack_config):
    with stack.running(stack_config, {"s3"}):
        yield services.s3_client(stack_config)


@pytest.fixture
def bucket(s3):
    """A bucket of the test's own, so a rule set here never touches the platform's."""
    name = f"flowgate-test-{uuid.uuid4().hex[:12]}"
    yield name
    for version in s3.list_object_versions(Bucket=name).get("Versions", []):
        s3.delete_object(Bucket=name, Key=version["Key"], VersionId=version["VersionId"],
                         BypassGovernanceRetention=True)
    s3.delete_bucket(Bucket=name)


def test_a_lifecycle_rule_is_stored_and_read_back(s3, bucket):
    s3.create_bucket(Bucket=bucket)
    rule = {"ID": "raw-app-logs-ttl", "Filter": {"Prefix": "raw/app_logs/"}, "Status": "Enabled",
            "Expiration": {"Days": 7}}
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [rule]})

    (stored,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert (stored["ID"], stored["Filter"], stored["Status"], stored["Expiration"]) == (
        rule["ID"], rule["Filter"], rule["Status"], rule["Expiration"])


def test_object_lock_refuses_to_delete_a_retained_version(s3, bucket):
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    until = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    version = s3.put_object(Bucket=bucket, Key="evidence/run.json", Body=b"{}", ObjectLockMode="GOVERNANCE",
                            ObjectLockRetainUntilDate=until)["VersionId"]

    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=bucket, Key="evidence/run.json", VersionId=version)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"


def _spooled_files(cfg) -> int:
    """Files the S3 server holds open in its data dir (anonymous, so only /proc sees them)."""
    pid = process.status(services.s3_service(cfg)).pid
    spool = str(cfg.data_dir("s3"))
    fd_dir = f"/proc/{pid}/fd"
    return sum(1 for fd in os.listdir(fd_dir) if _readlink(f"{fd_dir}/{fd}").startswith(spool + "/"))


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:  # closed between listdir and readlink
        return ""


def test_lake_objects_are_written_to_disk_and_freed_on_delete(s3, stack_config, bucket):
    s3.create_bucket(Bucket=bucket)
    before = _spooled_files(stack_config)
    keys = [f"raw/app_logs/dt=2026-01-01/hour=00/part-{i}.json.gz" for i in range(3)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=os.urandom(1024 * 1024))
    s3.put_object(Bucket=bucket, Key="raw/app_logs/_manifest.json", Body=b"{}")  # small: kept in memory

    assert _spooled_files(stack_config) == before + len(keys)
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    assert _spooled_files(stack_config) == before
