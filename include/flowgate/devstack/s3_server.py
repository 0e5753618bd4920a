"""The stack's S3 API: moto in server mode, with the bytes of objects on disk.

Why moto rather than S3Proxy (the disk-backed server Maven Central serves). Both were
tested with what the platform calls (put/get/head/list v1+v2/copy/delete-objects/
multipart with metadata, as partner quarantine and S3A do) and both serve all of that.
S3Proxy 4.1.0's filesystem store answers NotImplemented to bucket lifecycle
configuration (PUT/GET/DELETE), object lock, versioning and object tagging. The lake
gets a lifecycle rule (issue 12) and the audit bucket is a WORM store in production
(MinIO's object lock). Docker does not run on our machines, so the no-Docker stack is
the only place tests can run that code: a store that refuses it would leave it untested.
moto stores lifecycle rules (it never expires objects: the retention DAG deletes) and
enforces object lock.

What moto lacked is memory. By default it keeps every object under 5 MiB in RAM:
1,000 one-MiB objects took its RSS from 81 to 1,235 MiB, and the lake at 50,000
lines/s would take gigabytes an hour. moto writes each object into a
``SpooledTemporaryFile`` that moves to disk once it passes
``MOTO_S3_DEFAULT_KEY_BUFFER_SIZE``. With that threshold at 64 KiB and the temp files in
``.flowgate/data/s3``, 4,000 one-MiB objects (4.2 GB in all) left the RSS at 366 MiB,
and deleting them gave back the disk and the file handles. Same machine, 4 client threads:
moto puts 73-97 MiB/s and reads 186-204 MiB/s. S3Proxy puts 149 MiB/s and reads
409 MiB/s. The lake needs about 3 MiB/s (50,000 lines/s, compressed).

What this costs:
- one open file per object above the threshold: the soft limit is raised to the
  hard one (20,000 here), and the retention DAG and hourly compaction keep the lake far
  below it;
- the files are anonymous (unlinked at creation): ``du`` does not see them, and the lake
  is gone when the server stops, as it always was with moto. Tests provision their
  buckets on start;
- a multipart upload is joined in memory when it completes: RAM for the object's size,
  for that moment only.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile

# Objects above this go to disk. Reports, markers and manifests stay in memory. Every
# lake data file is larger.
SPOOL_ABOVE_BYTES = 64 * 1024


def raise_open_files_limit() -> int:
    """Soft limit up to the hard one (one open file per spooled object); the new limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spool-dir", required=True, help="where objects' bytes are written")
    args, moto_args = parser.parse_known_args(argv)
    raise_open_files_limit()
    os.makedirs(args.spool_dir, exist_ok=True)
    # moto's SpooledTemporaryFile rolls over into tempfile's directory.
    tempfile.tempdir = args.spool_dir
    os.environ.setdefault("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", str(SPOOL_ABOVE_BYTES))
    from moto.server import main as moto_main

    moto_main(moto_args)


if __name__ == "__main__":
    main()
