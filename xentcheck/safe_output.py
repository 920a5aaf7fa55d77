"""Writing the run's files safely: only regular files, atomically, never through a planted link.

``--results=/dev/null`` run as root would otherwise replace the device with a regular file (a rename
replaces whatever the name points at), and a symlink planted at ``RESULTS.lock`` or at a journal's name
would have a file elsewhere truncated. Every file the harness writes goes through here."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import IO


class OutputError(OSError):
    """An output path the harness refuses to write; the message is one line naming it and the fix."""


def target(path: str | Path) -> Path:
    """The regular file to write for ``path``: ``path`` itself, or, for a symlink, the file it names
    (the link stays a link). A path that exists as anything but a regular file is refused."""
    p = Path(path)
    real = Path(os.path.realpath(p))
    try:
        mode = os.stat(real).st_mode
    except FileNotFoundError:
        return real
    except OSError as e:
        raise OutputError(f"{p}: cannot inspect it ({e.strerror}); choose another path") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a device or special file"
        raise OutputError(
            f"{p} is {kind}, not a regular file; xentcheck writes results and reports only to "
            f"regular files: pass a file path"
        )
    return real


def write_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to the regular file ``path`` atomically (temp file in the same folder, flushed to
    disk, then renamed over it), creating parent folders. A failure (disk full) leaves the previous file
    as it was and no temporary file behind."""
    p = target(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a report is meant to be shared
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(path)


def open_new(path: str | Path) -> IO[str]:
    """A new regular file for writing (a journal): refused if anything, a link included, has the name."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    return os.fdopen(fd, "w")


def open_lock(path: str | Path) -> IO[str]:
    """The lock file, opened for reading and writing without following a link, and only if regular."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as e:
        raise OutputError(f"{path}: cannot open the lock file ({e.strerror}); remove what has its name") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OutputError(f"{path} is not a regular file; remove it (it is the run's lock file)")
    return os.fdopen(fd, "r+")
