"""Files written so that a crash never leaves a partial one, and their content hashes.

``atomic_write`` streams chunks into a temp file beside the destination, fsyncs it,
``os.replace``s it over the destination and fsyncs the directory; on any failure the temp
file is removed and the destination is left as it was.  ``FileEntry`` is what the model
registry's manifest records of each artifact (sha256 and size).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Iterable

from pydantic import BaseModel, ConfigDict


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    sha256: str
    size: int


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(dst: Path, chunks: Iterable[bytes]) -> FileEntry:
    """Write ``chunks`` to ``dst`` via a temp file in the same directory, fsync, os.replace.

    On any failure the temp file is removed and ``dst`` is left as it was.
    """
    tmp = dst.parent / f".{dst.name}.tmp-{uuid.uuid4().hex}"
    digest, size = hashlib.sha256(), 0
    try:
        with open(tmp, "xb") as out:
            for chunk in chunks:
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(dst.parent)
    return FileEntry(sha256=digest.hexdigest(), size=size)


def read_chunks(path: Path, size: int = 1 << 20) -> Iterable[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(size):
            yield chunk


def sha256_file(path: Path) -> FileEntry:
    digest, size = hashlib.sha256(), 0
    for chunk in read_chunks(path):
        digest.update(chunk)
        size += len(chunk)
    return FileEntry(sha256=digest.hexdigest(), size=size)
