"""The run's progress on stderr: a bar over (model, task) pairs on a terminal, plain lines elsewhere."""

from __future__ import annotations

import sys
import time


class Progress:
    """One tqdm bar over (model, task) pairs, with the current phase as postfix; when stderr is not a
    terminal (a log file, a batch job), one plain line per finished pair instead of ``\r`` fragments."""

    def __init__(self, total: int, enabled: bool):
        self.bar, self.lines = None, False
        self.total, self.done, self.label, self.start = total, 0, "", time.monotonic()
        if enabled and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="model·task", dynamic_ncols=True)
        elif enabled:
            self.lines = True

    def describe(self, text: str) -> None:
        self.label = text
        if self.bar is not None:
            self.bar.set_description(text)

    def phase(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(text)

    def advance(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        elif self.lines:
            elapsed = time.monotonic() - self.start
            print(f"[{self.done}/{self.total}] {self.label} done ({elapsed:.0f} s elapsed)", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
