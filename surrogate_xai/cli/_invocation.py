"""How to start ``sxai`` from the user's shell: the first words of every command we print.

The demo's summary, each report's replay command and the audit report's command line are
meant to be pasted. A bare ``sxai`` works only where the console script is on ``PATH`` (an
activated virtual environment, a ``pip install`` into the user's Python); after ``make demo``
it is not, and ``sxai: command not found`` is a poor first minute. So the printed program is
the console script of the Python running now, spelled as briefly as still works in a fresh
shell: ``sxai`` when that is the one on ``PATH``, else its path (relative when it lies below
the working folder, as ``.venv/bin/sxai`` does for ``make demo``), else
``python -m surrogate_xai.cli`` with this interpreter's path.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path


def _console_script() -> Path | None:
    """The ``sxai`` script installed next to this interpreter, if there is one."""
    folder = Path(sys.prefix) / ("Scripts" if os.name == "nt" else "bin")
    for name in ("sxai", "sxai.exe"):
        if (folder / name).is_file():
            return folder / name
    return None


def _spelled(path: Path) -> str:
    """``path`` relative to the working folder when it lies below it, else absolute."""
    absolute = path.absolute()
    try:
        relative = absolute.relative_to(Path.cwd())
    except ValueError:
        return str(absolute)
    # "./" keeps a bare file name from being looked up on PATH; a path with a folder is
    # already taken as a path by the shell.
    return str(relative) if len(relative.parts) > 1 else f"./{relative}"


def program() -> list[str]:
    """The words that start ``sxai`` in a fresh shell, as an argument list."""
    script = _console_script()
    found = shutil.which("sxai")
    if script is not None:
        if found is not None and Path(found).resolve() == script.resolve():
            return ["sxai"]
        return [_spelled(script)]
    return [sys.executable, "-m", "surrogate_xai.cli"]


def command_line(*args: str) -> str:
    """``sxai ARGS...`` as a shell-quoted line that works when pasted (see :func:`program`)."""
    return shlex.join([*program(), *args])
