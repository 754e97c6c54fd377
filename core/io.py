"""Files that readers never see half-written, even with several writers at once.

Every write goes to a temporary file that only its writer names (``tempfile.mkstemp`` in the target's folder, so
the rename stays on one file system) and is then renamed over the target. Two sessions of one server (threads of
one process) or two processes writing the same target each rename their own complete file; the last one wins.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

FILE_MODE = 0o644  # mkstemp's 0600 would hide a shared cache's files from the server's other users


@contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file object whose content replaces ``path`` once the block ends without an exception; on an
    exception the temporary file is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_writer`."""
    with atomic_writer(path) as f:
        f.write(data)
