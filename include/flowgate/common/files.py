"""Small files that other processes read while we rewrite them (heartbeats, markers)."""

from __future__ import annotations

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
