"""Files that hold what others should not read: the state store (it keeps the Asana webhook
secret and every plan), its WAL and lock files. Created 0600; an existing one is tightened."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO

__all__ = ["open_private", "private_file"]

PRIVATE = 0o600


def private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist, else take away the access of
    group and others (SQLite gives its ``-wal`` and ``-shm`` files the mode of the database)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
    except FileExistsError:
        st = path.stat()
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077 and stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid():
            path.chmod(mode & 0o700)
        return
    os.close(fd)


def open_private(path: Path) -> IO[str]:
    """``path`` opened for reading and appending (a lock file), created 0600."""
    private_file(path)
    return path.open("a+", encoding="utf-8")
