"""What each roadmap56 column costs this machine: machine seconds per full-size epoch x the epochs its fits ran.

The page's "compute" column sums each fit's wall seconds as recorded, and those depend on what else ran:
two workers sharing two cores each see about half the machine, so a column computed that way shows about
twice its machine time. This script measures each neural model's cost per epoch on a full-size task
(simulated E003: 6,601 training and 6,601 validation genes), ``--workers`` fits at once as the table was
computed (2 on 2 cores) and nothing else running: each fit capped
at ``--epochs`` epochs, timed whole (training, the validation pass, keeping the best weights) and divided
by its epochs. Multiplied by the epochs the model's shipped fits ran (their records say), that is the
column's machine time on an idle machine. Models that are not trained by epochs are given their
recorded fit seconds (they were computed one worker at a time).

Run it with the machine otherwise idle. Usage:
  python benchmarks/roadmap56_cost.py [--models a,b] [--epochs 3] [--bundles leaderboards/roadmap56-simremc/zoo]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

TARGET_HOURS = 8.0  # the whole zoo at filing time (issue 20)


def shipped_fits(bundles: Path) -> dict[str, list[dict]]:
    from chrombench.results import read_records

    fits: dict[str, list[dict]] = {}
    for record in read_records(bundles, kind="seed"):
        fits.setdefault(record["model"]["name"], []).append(record)
    return fits


def timed_fit(name: str, epochs: int) -> tuple[float, int]:
    """One worker's full-size fit capped at ``epochs``: (seconds, epochs), after a small warm-up fit that
    takes the one-time costs (loading kernels, the allocator's first pages) out of the timing."""
    from chrombench.data.load import load_task
    from chrombench.models.registry import make_model

    data = load_task("E003")
    small = data.train.subset(np.arange(256))
    make_model(name, epochs=1).fit(small, small)
    model = make_model(name, epochs=epochs, patience=epochs + 1)  # the cap ends it: exactly `epochs` epochs
    start = time.perf_counter()
    model.fit(data.train, data.valid)
    return time.perf_counter() - start, len(model.history_["epochs"])


def machine_seconds_per_epoch(name: str, epochs: int, workers: int) -> float:
    """Machine seconds per epoch with ``workers`` fits running at once, as the table is computed: some
    models train on one thread (two workers then share the machine), the LSTM kernels use every core."""
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(workers) as pool:
        runs = pool.starmap(timed_fit, [(name, epochs)] * workers)
    return max(t for t, _ in runs) / sum(n for _, n in runs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundles", type=Path, default=Path("leaderboards/roadmap56-simremc/zoo"))
    parser.add_argument("--models", default="", help="comma-separated (default: every bundled model)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="fits at once (the table used 2 on 2 cores)")
    args = parser.parse_args(argv)

    from chrombench.baselines.torch_trainer import TorchChromModel
    from chrombench.models.registry import get_model_class

    fits = shipped_fits(args.bundles)
    if not fits:
        print(f"no bundled records under {args.bundles}", file=sys.stderr)
        return 2
    names = [m for m in args.models.split(",") if m] or sorted(fits)
    print(f"{'model':<32} {'fits':>4} {'epochs':>7} {'s/epoch':>8} {'machine h':>10} {'recorded h':>11}")
    total = 0.0
    for name in names:
        records = fits.get(name, [])
        recorded = sum(r["fit_time_s"] for r in records) / 3600
        epochs = sum(int(r["training"].get("epochs_run") or 0) for r in records)
        if issubclass(get_model_class(name), TorchChromModel):
            per_epoch = machine_seconds_per_epoch(name, args.epochs, args.workers)
            hours = epochs * per_epoch / 3600 if records else float("nan")  # no column yet: its rate only
        else:
            per_epoch, hours = float("nan"), recorded
        if records:
            total += hours
        print(f"{name:<32} {len(records):>4} {epochs:>7} {per_epoch:>8.2f} {hours:>10.2f} {recorded:>11.2f}",
              flush=True)
    print(f"\nthe bundled columns, machine time: {total:.1f} h  (issue 20's target for the zoo at filing: "
          f"<= {TARGET_HOURS:.0f} h)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
