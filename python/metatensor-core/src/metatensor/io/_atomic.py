"""Atomic replacement of a file: the data is written to a temporary file next to
the destination, flushed to the disk (``fsync``) and renamed over the
destination.

Temporary files are named ``.<destination name>.<pid>-<random hex>.tmp``, a
different name for every call (so that several threads or processes can save
to the same destination at the same time). On failure the temporary file is
removed. A process killed while saving can not remove its temporary file: the
next save to the same destination removes it. On platforms with ``fcntl``
(Linux, macOS, ...), a save holds an exclusive ``flock`` on its temporary file
until the file is renamed, and only temporary files that nobody holds a lock on
are removed, so that saves running at the same time never remove each other's
files. Without ``fcntl`` (Windows), stale temporary files are not removed.

This module is also used by metatensor-torch to save models.
"""

import os
import re
import secrets
from typing import BinaryIO, Callable, Optional, Tuple


try:
    import fcntl
except ImportError:  # pragma: no cover (Windows)
    fcntl = None  # type: ignore[assignment]


# the random part of the temporary names (with an optional process id, and the
# names of older versions: random hex alone for .mts files, process id alone
# for models)
_TEMPORARY_MIDDLE = re.compile(r"(?:[0-9]+-)?[0-9a-f]{12}|[0-9]+")


def temporary_prefix(path: str) -> Tuple[str, str]:
    """The folder of ``path`` and the prefix of its temporary files."""
    directory, name = os.path.split(path)
    return directory, f".{name}."


def _is_temporary_name(entry: str, prefix: str) -> bool:
    if not (entry.startswith(prefix) and entry.endswith(".tmp")):
        return False
    return _TEMPORARY_MIDDLE.fullmatch(entry[len(prefix) : -len(".tmp")]) is not None


def _lock(fd: int) -> bool:
    """Take an exclusive lock on ``fd`` without waiting, return whether the
    lock was taken (always ``True`` without ``fcntl``)."""
    if fcntl is None:  # pragma: no cover (Windows)
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def remove_stale_temporaries(path: str) -> None:
    """Remove the temporary files left next to ``path`` by saves that were
    killed (the files that no running save holds a lock on). Errors are
    ignored. Nothing is done on platforms without ``fcntl``."""
    if fcntl is None:  # pragma: no cover (Windows)
        return
    directory, prefix = temporary_prefix(path)
    try:
        entries = os.listdir(directory or ".")
    except OSError:
        return
    for entry in entries:
        if not _is_temporary_name(entry, prefix):
            continue
        candidate = os.path.join(directory, entry)
        try:
            fd = os.open(candidate, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            if _lock(fd):
                # nobody is writing this file (a running save holds its lock
                # until the file is renamed), and it is still the one we
                # opened: remove it
                if os.path.samestat(os.fstat(fd), os.lstat(candidate)):
                    os.unlink(candidate)
        except OSError:
            pass
        finally:
            os.close(fd)


def _create_temporary(path: str) -> Tuple[str, int]:
    directory, prefix = temporary_prefix(path)
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        name = f"{prefix}{os.getpid()}-{secrets.token_hex(6)}.tmp"
        temporary = os.path.join(directory, name)
        try:
            fd = os.open(temporary, flags, 0o666)
        except FileExistsError:
            continue
        # another save removing stale files could have removed this one
        # between its creation and the lock: check that it is still there
        try:
            if _lock(fd) and os.path.samestat(os.fstat(fd), os.stat(temporary)):
                return temporary, fd
        except OSError:
            pass
        os.close(fd)
    raise FileExistsError(f"unable to create a temporary file next to '{path}'")


def _fsync_directory(directory: str) -> None:
    if os.name == "nt":  # pragma: no cover
        return
    try:
        fd = os.open(directory or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomically(
    path: str,
    write: Callable[[BinaryIO], None],
    *,
    mode: Optional[int] = None,
) -> None:
    """Call ``write(file)`` with a binary file object open on a new temporary
    file next to ``path``, then ``fsync`` it and rename it to ``path``.

    On failure (including ``KeyboardInterrupt``), the temporary file is removed
    and an existing file at ``path`` is left untouched. Stale temporary files of
    killed saves to the same ``path`` are removed first. ``OSError`` are
    raised as they are.

    :param path: the destination
    :param write: function writing the data to the file object it receives
    :param mode: permissions of the new file; by default the permissions of
        the file being replaced, or the default permissions of new files
    """
    remove_stale_temporaries(path)
    temporary, fd = _create_temporary(path)
    file = open(fd, "w+b", buffering=1024 * 1024)
    try:
        if hasattr(os, "fchmod"):
            if mode is None:
                try:
                    mode = os.stat(path).st_mode & 0o7777
                except FileNotFoundError:
                    pass
            if mode is not None:
                os.fchmod(fd, mode)
        write(file)
        file.flush()
        os.fsync(fd)
        if os.name == "nt":  # pragma: no cover
            # open files can not be renamed on Windows
            file.close()
        # elsewhere, the lock is kept until the file has its final name
        os.replace(temporary, path)
    except BaseException:
        file.close()
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    file.close()
    _fsync_directory(os.path.dirname(path))
