"""More worker processes on this machine for one ``chrombench run`` (``--workers N``).

Training runs torch single-threaded (OpenMP threads stall on a shared CPU, see
``chrombench.parallel.map_chunks``), so one process keeps one core busy. Extra workers are
plain ``chrombench run`` processes on the same output folder: they share its Optuna and claims
database exactly as workers on several machines share a PostgreSQL one, so each trial and each seed
is still done once, and every worker ends with every record. The main process shows the progress;
the others log to ``OUTPUT_DIR/logs/worker-<k>.log``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

MAX_DEFAULT = 4  # beyond this, the shared SQLite stores rather than the cores set the pace


def default_workers() -> int:
    """``$CHROMBENCH_WORKERS`` (e.g. 1 in a batch job that was given one core), else one per CPU core,
    up to ``MAX_DEFAULT``."""
    env = os.environ.get("CHROMBENCH_WORKERS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"CHROMBENCH_WORKERS={env!r} is not a whole number") from None
    return max(1, min(MAX_DEFAULT, os.cpu_count() or 1))


@dataclass
class Worker:
    index: int
    proc: subprocess.Popen
    log: Path


def spawn(args: list[str], n: int, log_dir: Path) -> list[Worker]:
    """Start ``n - 1`` extra workers running ``chrombench <args>`` (one worker each, no progress bar)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    # the workers share the cores: each one's native kernels get its share (this process included)
    os.environ.setdefault("CHROMBENCH_NATIVE_THREADS", str(max(1, (os.cpu_count() or 1) // n)))
    env = dict(os.environ)
    workers = []
    for k in range(1, n):
        log = log_dir / f"worker-{k}.log"
        with open(log, "w") as fh:
            proc = subprocess.Popen([sys.executable, "-m", "chrombench", *args, "--workers", "1", "--no-progress"],
                                    stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        workers.append(Worker(k, proc, log))
    return workers


def stop(workers: list[Worker], grace_s: float = 30.0) -> None:
    """SIGTERM (each worker marks its running trial FAIL and its MLflow runs KILLED), then SIGKILL."""
    for w in workers:
        if w.proc.poll() is None:
            w.proc.send_signal(signal.SIGTERM)
    for w in workers:
        try:
            w.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            w.proc.kill()
            w.proc.wait()


def join(workers: list[Worker]) -> list[Worker]:
    """Wait for every worker; return those that failed."""
    for w in workers:
        w.proc.wait()
    return [w for w in workers if w.proc.returncode != 0]
