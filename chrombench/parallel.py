"""CPU parallelism for torch inference that does not depend on a model: chunks of genes on Python
threads with torch single-threaded. Used by the trainer's prediction and by gradient-based
interpretation, so it lives in the core (``chrombench.explain`` must not import the zoo)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable

import torch


@contextmanager
def intra_op_threads(n: int | None):
    """Run the block with ``n`` torch intra-op threads (``None``: leave as is), then restore."""
    if n is None or n == torch.get_num_threads():
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


_POOLS: dict[int, Any] = {}


def map_chunks(fn: Callable[[int, int], Any], n: int, chunk: int, device: torch.device) -> list:
    """``[fn(start, stop) for each chunk of range(n)]`` in order, chunks run on several cores.

    Threading policy (measured on the shared 2-core machine this was written on): torch's OpenMP
    intra-op threads made these small per-step operations up to 10x slower whenever another process
    held a core, because threads wait for each other at every operation. So torch runs
    single-threaded here, and on a CPU independent chunks of genes go to ``torch.get_num_threads()``
    Python threads instead (torch releases the GIL inside its kernels). Each chunk is computed the
    same way whatever the thread count, so results do not depend on it.
    """
    starts = list(range(0, n, chunk))
    threads = min(len(starts), torch.get_num_threads()) if device.type == "cpu" else 1
    run = lambda start: fn(start, min(n, start + chunk))  # noqa: E731
    if threads <= 1:
        with intra_op_threads(1 if device.type == "cpu" else None):
            return [run(start) for start in starts]
    if threads not in _POOLS:
        from concurrent.futures import ThreadPoolExecutor

        _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="chrombench-predict",
                                             initializer=torch.set_num_threads, initargs=(1,))
    with intra_op_threads(1):
        return list(_POOLS[threads].map(run, starts))


