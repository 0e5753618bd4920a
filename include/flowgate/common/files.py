"""Files: small ones other processes read while we rewrite them (heartbeats, markers), and
the digest that identifies a received file."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def replace_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file in the same directory and a rename:
    a reader sees the old content or the new, whole, never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def sha256_of_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MB blocks (a delivered file may be large)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
