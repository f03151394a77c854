"""Progress bars on stderr (rich), shown only to a person at a terminal.

Output that is piped or captured (a script, a test, CI) gets no bars and no control codes, and
``--quiet`` turns them off everywhere; results always go to files or stdout, never here.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator


class Progress:
    """One bar (or spinner, when the amount of work is unknown) per task.

    Parameters
    ----------
    enabled : bool
        False for ``--quiet``. Bars are also off when stderr is not a terminal.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and sys.stderr.isatty()

    @contextlib.contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Callable[..., None]]:
        """Show ``description`` while the block runs; call the yielded function per step
        (with a number of steps, default 1)."""
        if not self.enabled:
            yield lambda steps=1: None
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as RichProgress

        columns = [SpinnerColumn(), TextColumn("{task.description}")]
        if total is not None:
            columns += [BarColumn(), MofNCompleteColumn()]
        columns.append(TimeElapsedColumn())
        with RichProgress(*columns, console=Console(stderr=True), transient=False) as bar:
            task_id = bar.add_task(description, total=total)
            yield lambda steps=1: bar.advance(task_id, steps)
            if total is None:
                bar.update(task_id, total=1, completed=1)
