"""S3A's settings come from the lake's connection: endpoint and style on the command line,
keys only through the environment."""

from __future__ import annotations

import json

from flowgate.common.spark import s3a_conf, s3a_credentials_conf, s3a_env, spark_jars


def _lake(monkeypatch, **conn):
    monkeypatch.setenv("AIRFLOW_CONN_LAKE_S3", json.dumps({"conn_type": "aws", **conn}))


def test_a_local_endpoint_means_path_style_and_no_tls_and_no_key_in_the_conf(monkeypatch):
    _lake(monkeypatch, login="AKIDLOCAL", password="s3cr3t-value",
          extra={"endpoint_url": "http://127.0.0.1:9000", "region_name": "us-east-1"})
    conf = s3a_conf()
    assert conf == {
        "spark.hadoop.fs.s3a.endpoint": "http://127.0.0.1:9000",
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
        "spark.hadoop.fs.s3a.endpoint.region": "us-east-1",
    }
    assert not any("s3cr3t" in v or "AKIDLOCAL" in v for v in conf.values())
    assert s3a_env() == {"AWS_ACCESS_KEY_ID": "AKIDLOCAL", "AWS_SECRET_ACCESS_KEY": "s3cr3t-value"}


def test_an_https_endpoint_keeps_tls_on(monkeypatch):
    _lake(monkeypatch, extra={"endpoint_url": "https://minio.internal:9000"})
    assert s3a_conf()["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "true"


def test_aws_itself_keeps_s3a_defaults_and_the_role_credentials(monkeypatch):
    _lake(monkeypatch, extra={"region_name": "eu-west-1"})
    assert s3a_conf() == {"spark.hadoop.fs.s3a.endpoint.region": "eu-west-1"}
    assert s3a_env() == {}


def test_the_driver_turns_its_environment_into_the_session_keys(monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    assert s3a_credentials_conf() == {}
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKID")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    assert s3a_credentials_conf() == {"spark.hadoop.fs.s3a.access.key": "AKID", "spark.hadoop.fs.s3a.secret.key": "secret"}


def test_jar_lists_join_without_empty_entries():
    assert spark_jars("/a/k.jar,/a/c.jar", "", "/s/*.jar") == "/a/k.jar,/a/c.jar,/s/*.jar"
    assert spark_jars("", "") == ""
