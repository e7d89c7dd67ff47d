"""Which tasks' test splits are sealed right now: process-wide, so every thread sees it.

The engine seals a task while it tunes or fits a model on it. Meanwhile chrombench's own ways to
produce that task's test split (``store.load_task``, ``store.read_task_dir``, the simulator)
refuse with ``ProtocolViolation``. A ContextVar would not do: a model's fit may start threads.

This stops every path through chrombench; it cannot stop hostile code that opens the cache's files
by path or patches chrombench in memory (nothing inside one process can). What the engine adds is
that the test split is not in memory at all while a model fits (``engine.evaluation.TaskHandle``).
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter

from ..errors import ProtocolViolation

_lock = threading.Lock()
_sealed: Counter = Counter()  # (dataset, task) -> how many active seals


@contextlib.contextmanager
def sealed(dataset: str, task: str):
    key = (dataset, task)
    with _lock:
        _sealed[key] += 1
    try:
        yield
    finally:
        with _lock:
            _sealed[key] -= 1
            if _sealed[key] <= 0:
                del _sealed[key]


def is_sealed(dataset: str, task: str) -> bool:
    with _lock:
        return _sealed.get((dataset, task), 0) > 0


def any_sealed() -> bool:
    with _lock:
        return bool(_sealed)


def check(dataset: str, task: str, what: str) -> None:
    """Raise ``ProtocolViolation`` if ``dataset/task`` is sealed; ``what`` names the attempted access."""
    if is_sealed(dataset, task):
        raise ProtocolViolation(
            f"{what} while a model is tuned or fitted on it: the test split of {dataset}/{task} is sealed; "
            f"models see only the train and valid splits they are given")
