"""Where an AttentiveChrome training epoch's time goes: each native kernel entry point, and the rest.

The rest is torch and Python around the kernels (indexing, dropout, the classifier, the loss,
autograd's bookkeeping). Kernel calls are timed where they are made, so the numbers add up to the
epoch time the trainer reports. Timings on a shared machine vary from minute to minute; compare
runs made close together.

Usage: python benchmarks/epoch_breakdown.py [--batch-size 16 128] [--epochs 2]
"""

from __future__ import annotations

import argparse
import collections
import sys
import time

import numpy as np

ENTRY_POINTS = ("prepare", "attend", "backward")  # native_lstm's


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, nargs="+", default=[16, 128])
    parser.add_argument("--epochs", type=int, default=2, help="epochs per batch size (each printed)")
    args = parser.parse_args(argv)

    from chrombench.baselines import native_lstm
    from chrombench.baselines.attentivechrome import AttentiveChrome
    from chrombench.data.load import load_task

    if not native_lstm.available():
        print(f"fused kernels not in use ({native_lstm.unavailable_reason()}): nothing to break down")
        return 1
    spent: dict[str, float] = collections.defaultdict(float)

    def timed(name, fn):
        def call(*a, **k):
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[name] += time.perf_counter() - start
        return call

    for name in ENTRY_POINTS:
        setattr(native_lstm, name, timed(name, getattr(native_lstm, name)))
    train = load_task("E003").train
    print(f"simremc/E003, {len(train)} training genes")
    for batch in args.batch_size:
        AttentiveChrome(epochs=1, device="cpu", batch_size=batch).fit(train.subset(np.arange(4 * batch)), None)
        for _ in range(args.epochs):
            spent.clear()
            model = AttentiveChrome(epochs=1, device="cpu", batch_size=batch).fit(train, None)
            epoch = model.history_["epochs"][0]["epoch_time"]
            parts = ", ".join(f"{k} {v:.2f} s" for k, v in sorted(spent.items(), key=lambda kv: -kv[1]))
            print(f"batch {batch}: epoch {epoch:.2f} s = {parts}, rest {epoch - sum(spent.values()):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
