"""Progress bars for the Python API's long calls (``explain_batch``, ``build_audit_findings``).

``progress=`` takes

* ``None`` (the default): a bar only where a person is watching: a Jupyter kernel, or a
  terminal on stderr, and only from the main thread (a service's worker threads never draw);
  scripts, pipes, CI and tests get none;
* ``True`` / ``False``: always / never;
* a callable: called with the number of steps done each time some finish (to drive a bar of
  your own); nothing is drawn.

The bar is tqdm's text bar on stderr, which a terminal and a notebook both render (no widget
library needed). It reports work done; it can never change a value.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator

from .exceptions import ConfigurationError

#: What ``progress=`` accepts.
ProgressOption = bool | Callable[[int], object] | None


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    get = getattr(shell, "get_ipython", None)
    ipython = get() if callable(get) else None
    return type(ipython).__name__ == "ZMQInteractiveShell"


def watched() -> bool:
    """Whether a person can see a bar: a notebook or a terminal, from the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return False
    stream = sys.stderr
    tty = stream is not None and hasattr(stream, "isatty") and stream.isatty()
    return tty or _in_notebook()


def _nothing(steps: int = 1) -> None:
    """The progress function when nothing is shown."""


@contextlib.contextmanager
def progress_bar(
    progress: ProgressOption, total: int | None, description: str, unit: str = "rows"
) -> Iterator[Callable[[int], object]]:
    """A function to call with the steps done, while the block runs.

    Parameters
    ----------
    progress : bool, callable or None
        See the module.
    total : int, optional
        Steps in all (None: unknown, the bar counts without an end).
    description : str
        Shown before the bar.
    unit : str
        What a step is.

    Raises
    ------
    ConfigurationError
        If ``progress`` is none of the accepted kinds.
    """
    if callable(progress) and not isinstance(progress, bool):
        yield progress
        return
    if progress is not None and not isinstance(progress, bool):
        raise ConfigurationError(
            f"progress must be True, False, None or a callable, got {type(progress).__name__}"
        )
    if not (watched() if progress is None else progress):
        yield _nothing
        return
    from tqdm.std import tqdm

    with tqdm(total=total, desc=description, unit=f" {unit}", file=sys.stderr) as bar:
        yield bar.update


__all__ = ["ProgressOption", "progress_bar", "watched"]
