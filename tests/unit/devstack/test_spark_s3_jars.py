"""Spark's S3A jars: hadoop-aws at pyspark's own Hadoop, individual SDK modules instead of
the 686 MB bundle, and nothing that pyspark already ships (a second copy would clash)."""

from __future__ import annotations

import re
from importlib.util import find_spec
from pathlib import Path

import pytest

from flowgate.devstack.config import StackConfig

REPO = Path(__file__).resolve().parents[3]
POM = REPO / "include/flowgate/devstack/jars/spark-s3.pom.xml"


def _pyspark_jars() -> list[str]:
    return [p.name for p in (Path(find_spec("pyspark").origin).parent / "jars").glob("*.jar")]


def _artifact(jar: str) -> str:
    return re.sub(r"-\d[\w.-]*\.jar$", "", jar)


@pytest.fixture(scope="module")
def resolved() -> list[str]:
    folder = StackConfig.from_env().jars_dir / "spark-s3"
    jars = sorted(p.name for p in folder.glob("*.jar"))
    assert jars, f"no jars in {folder}: run `make setup`"
    return jars


def test_hadoop_aws_matches_the_hadoop_pyspark_ships():
    (client,) = [j for j in _pyspark_jars() if j.startswith("hadoop-client-api-")]
    pom_version = re.search(r"<hadoop.version>([^<]+)</hadoop.version>", POM.read_text()).group(1)
    assert client == f"hadoop-client-api-{pom_version}.jar"


def test_the_sdk_bundle_is_excluded_and_every_module_is_at_one_version(resolved):
    assert not any(j.startswith("bundle-") for j in resolved)
    sdk_version = re.search(r"<aws.sdk.version>([^<]+)</aws.sdk.version>", POM.read_text()).group(1)
    for module in ("s3", "s3-transfer-manager", "apache-client", "netty-nio-client", "sts", "sdk-core", "auth"):
        assert f"{module}-{sdk_version}.jar" in resolved
    sdk_jars = [j for j in resolved if j.endswith(f"-{sdk_version}.jar")]
    others = sorted(set(resolved) - set(sdk_jars))
    assert [_artifact(j) for j in others] == ["analyticsaccelerator-s3", "eventstream", "hadoop-aws", "reactive-streams"]


def test_no_jar_duplicates_one_pyspark_ships(resolved):
    shipped = {_artifact(j) for j in _pyspark_jars()}
    assert not {_artifact(j) for j in resolved} & shipped


def test_the_jars_stay_small(resolved):
    folder = StackConfig.from_env().jars_dir / "spark-s3"
    total = sum((folder / j).stat().st_size for j in resolved)
    assert total < 20 * 2**20, f"{total / 2**20:.1f} MiB: did a bundle or a second Hadoop slip in?"
