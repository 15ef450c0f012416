"""Files in the box's state directory, written and read without following links.

The state directory belongs to the app's user, and first boot runs as root: a link the user left
there (``fault`` pointing at ``/boot/firmware/cmdline.txt``, a ``.new`` beside a secret) must never
make root write, read or change the mode of the file it points to. Every write goes to a fresh
file beside its target (created exclusively, never through a link) and is renamed over it (which
replaces a link itself, not what it points to); every read and mode change opens the file with
``O_NOFOLLOW``.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

#: What :func:`read_regular` reads at most (a key, a certificate, the secrets file).
MAX_READ = 1024 * 1024


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` by a whole new file holding ``data`` (a power cut leaves the old one or
    the new one), with ``mode``; a link at ``path`` or beside it is replaced, never followed."""
    tmp = path.with_name(path.name + ".new")
    tmp.unlink(missing_ok=True)  # a leftover, or a link planted there: removed, not followed
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), mode)  # whatever the umask took away
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)


def read_regular(path: Path, limit: int = MAX_READ) -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit``). A link there is an OSError
    (ELOOP), as is anything that is not a regular file; a missing file a FileNotFoundError."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise OSError(f"{path.name} is not a regular file")
        return file.read(limit)


def restrict(path: Path, mode: int = 0o600) -> bool:
    """Take away what ``mode`` does not allow from the regular file ``path`` (never through a
    link); whether its mode was changed."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        current = stat.S_IMODE(os.fstat(fd).st_mode)
        if current & ~mode:
            os.fchmod(fd, current & mode)
            return True
        return False
    finally:
        os.close(fd)


def own_directory(path: Path, mode: int = 0o700) -> None:
    """``path`` as a directory of this process's user: whatever else is there (a link, a file,
    a directory another user made, with whatever they left in it) is removed first."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        info = None
    if info is not None and (not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid()):
        if stat.S_ISDIR(info.st_mode):
            shutil.rmtree(path)  # removes links inside without following them
        else:
            path.unlink()
    path.mkdir(mode=mode, exist_ok=True)
