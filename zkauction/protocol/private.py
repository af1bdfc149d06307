"""Private files (keys, seeds, openings, kept checkpoints): created 0600 inside 0700 folders, written
atomically (temporary file in the same folder, then rename), never world-readable even for an
instant."""

from __future__ import annotations

import os
from pathlib import Path


def private_folder(path: str | Path) -> Path:
    """Create ``path`` (and parents) if needed, and make it 0700."""
    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)  # 0700 from the start (umask can only narrow it)
    path.chmod(0o700)
    return path


def write_private(path: str | Path, text: str, *, durable: bool = True) -> Path:
    """Write ``text`` to ``path`` with mode 0600 from the first byte, atomically. ``durable=False``
    skips the fsync: the file is then the old one or the new one after a crash of the process, but
    a power cut may leave the old one (fine for a kept checkpoint between a bidder's openings: an
    older one is still a valid anchor, only a weaker one; before an opening it is written durably)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
