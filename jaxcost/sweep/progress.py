"""A sweep's progress on a terminal: a bar with the count, the rate, the time left, and the failures so far."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any, TextIO


class ProgressBar:
    """``progress(done, total, status)`` for ``run_sweep``, drawn with rich on ``stream``; the bar is
    created at the first record (when the number of configurations to run is known) and removed at the end."""

    def __init__(self, stream: TextIO | None = None):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        console = Console(file=stream or sys.stderr)
        self.progress = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[rate]}"), TextColumn("ETA"), TimeRemainingColumn(),
                                 TextColumn("{task.fields[failed]}"), console=console, transient=True)
        self.task: Any = None
        self.failed = 0

    def __enter__(self) -> ProgressBar:
        self.progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.progress.stop()

    def __call__(self, done: int, total: int, status: str) -> None:
        if self.task is None:
            self.task = self.progress.add_task("sweep", total=total, rate="", failed="")
        self.failed += status != "ok"
        speed = self.progress.tasks[0].speed
        self.progress.update(self.task, completed=done, rate=f"{speed:.1f}/s" if speed else "",
                             failed=f"{self.failed} failed" if self.failed else "")
