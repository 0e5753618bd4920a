"""The lake's and the index's upkeep, as the retention and compaction DAGs run it.

Every TTL comes from ``flowgate/logs/ttl.yaml``. The clock is a parameter: the DAGs pass
the run's logical date, tests pass any moment, and nothing reads the wall clock itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flowgate.common.connections import s3_client
from flowgate.logs import lake, search
from flowgate.logs.ttl import load_ttl

COMPACTION_LATENESS = timedelta(minutes=15)  # an hour is closed this long after it ends


def apply_retention(now: datetime, s3=None, search_client: search.SearchClient | None = None) -> dict:
    """Set the lake's lifecycle rule, delete what is past the TTL (lake and indices)."""
    ttl = load_ttl()
    s3 = s3 or s3_client()
    lake.apply_lifecycle(s3, ttl.lake.days)
    deleted = lake.delete_expired(s3, ttl.lake.days, now=lambda: now)
    client = search_client or search.SearchClient.from_connection()
    indices = client.delete_older_than(ttl.opensearch.index_days, now=lambda: now)
    return {"lake_days": ttl.lake.days, "lake_objects_deleted": len(deleted),
            "index_days": ttl.opensearch.index_days, "indices_deleted": indices}


def compact_closed_hours(now: datetime, s3=None) -> list[dict]:
    """Compact every hour of the lake no batch writes to any more."""
    s3 = s3 or s3_client()
    done = []
    for day, hour in lake.closed_hours(s3, now, COMPACTION_LATENESS):
        result = lake.compact_hour(s3, day, hour)
        if result.outputs:
            done.append({"prefix": result.prefix, "inputs": result.inputs, "outputs": result.outputs,
                         "lines": result.lines})
    return done
