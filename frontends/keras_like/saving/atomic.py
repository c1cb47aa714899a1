"""Safe writes: a file is written beside its destination under a temporary name, flushed to
disk, then renamed over the destination (``os.replace`` is atomic on POSIX and Windows).

A process killed mid-save therefore leaves the previous file untouched (plus, at worst, a
stray ``.<name>.<random>.tmp`` next to it); readers never see a half-written model.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

TEMP_SUFFIX = ".tmp"


def _fsync_dir(directory: str) -> None:
    """Make the rename itself durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _final_mode(path: str) -> int:
    """Keep the mode of the file being replaced; new files get the usual umask-derived mode."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """``with atomic_path('m.keras') as tmp: write(tmp)``: ``tmp`` replaces ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory; give a file name to save to")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.",
                               suffix=TEMP_SUFFIX)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, _final_mode(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    _fsync_dir(directory)
