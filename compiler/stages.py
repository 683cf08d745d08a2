"""Where a command's time went (`--timings`, and progress lines on a terminal)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator


class Stages:
    """Where a command's time went: each stage with its duration and what it counted. `show`
    receives a line as each stage ends (progress on a terminal); summary() is `--timings`."""

    def __init__(self, show: Callable[[str], None] | None = None) -> None:
        self.show = show
        self.done: list[tuple[str, float, str]] = []

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[list[str]]:
        """Times the block; the block appends what it counted (`12 files`) to the list."""
        counted: list[str] = []
        started = time.perf_counter()
        yield counted
        self.done.append((name, time.perf_counter() - started, ", ".join(counted)))
        if self.show is not None:
            self.show(f"meshc: {name}" + (f": {counted[0]}" if counted else "") + f" ({self.done[-1][1]:.2f} s)")

    def summary(self) -> str:
        total = sum(seconds for _, seconds, _ in self.done)
        lines = [f"  {name:<8} {seconds:8.3f} s  {counted}".rstrip() for name, seconds, counted in self.done]
        return "\n".join(["meshc: timings", *lines, f"  {'total':<8} {total:8.3f} s"]) + "\n"
