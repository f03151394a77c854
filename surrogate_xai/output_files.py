"""Where and with which permissions an output file is written (shared by every writer).

The command line stages its outputs with :func:`tempfile.mkstemp`, and the report module
writes HTML the same way; a temporary file is created ``0600``. Renamed into place as it is,
every result, report and audit report would be private whatever the user's umask, and an
existing ``0644`` file would silently become ``0600``. And :func:`os.replace` on a symlink
replaces the link itself, not the file it points to. These helpers give both writers one
rule:

* a file that exists keeps its permission bits;
* a new file gets ``0666 & ~umask``, as ``open(path, "w")`` would give it;
* a symlink is followed: the file it points to is replaced, the link stays;
* a path that is not a regular file (a device such as ``/dev/stdout``, a pipe, a socket) is
  refused: renaming a temporary file over it would replace the device node, not write to it.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from .exceptions import InputError

_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the system allows."""
    try:
        # Linux >= 4.7 publishes it; reading it does not touch the process state.
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    # Elsewhere the only way is to set it and put it back (under a lock, for our threads).
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def write_target(path: str | os.PathLike[str], what: str | None = None) -> Path:
    """The file a write to ``path`` must replace: a symlink's target, else ``path`` itself.

    Raises
    ------
    InputError
        If the path (or the file a symlink points to) exists and is not a regular file.
    """
    p = Path(path)
    target = Path(os.path.realpath(p)) if p.is_symlink() else p
    try:
        st = target.stat()
    except FileNotFoundError:
        return target
    except OSError:
        return target  # the write itself reports it, naming the path
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{what + ' ' if what else ''}{p} is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(
            f"{what + ' ' if what else ''}{p} is not a regular file (a device, pipe or "
            "socket); give the path of a file"
        )
    return target


def output_mode(target: Path) -> int:
    """Permission bits for ``target``: an existing file's own, else ``0666 & ~umask``."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~current_umask()


__all__ = ["current_umask", "output_mode", "write_target"]
