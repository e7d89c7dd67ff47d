"""The optimizer step's share of each neural model's training step, at the model's default batch size.

The trainer's optimizer is torch's (``torch_trainer.ClippedAdam``: ``clip_grad_norm_`` then Adam's
fused update). A native step is worth its C file only where the optimizer is a large part of the step:
its share here bounds what any faster optimizer could save on the whole step. The optimizer's work does
not depend on the batch (it touches each parameter once); its share of a training step does.

Each model runs as the trainer runs it (torch on one intra-op thread, the LSTM kernels on
``--threads``), on random counts, in rounds; the medians are printed.

Usage: python benchmarks/bench_adam.py [--rounds 3] [--steps 30] [--threads 2] [--models deepchrome,...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch

from chrombench.baselines import native_lstm
from chrombench.baselines.torch_trainer import intra_op_threads, transform_counts
from chrombench.models.registry import get_model_class

# the zoo's models that train through ClippedAdam (Chromoformer: AdamW; DeepChrome 2.0: SGD)
MODELS = ("attentivechrome", "lstm", "deepchrome", "hm-crnn", "transferchrome")


def time_steps(name: str, steps: int) -> tuple[int, float, float]:
    """Batch size, mean seconds per optimizer step and per whole training step."""
    model = get_model_class(name)(seed=0, device="cpu")
    torch.manual_seed(0)
    module = model._build_module()
    batch = int(model.batch_size)
    rng = np.random.default_rng(0)
    X = transform_counts(rng.poisson(2.0, size=(batch, 100, 5)).astype(np.int32), model.input_transform,
                         torch.device("cpu"))
    y = torch.as_tensor(rng.integers(0, 2, batch).astype(np.float32))
    optimizer, loss_fn = model._optimizer(module), model._loss()
    module.train()
    opt_time = train_time = 0.0
    for i in range(steps + 3):  # the first steps warm caches and the kernels' thread pool
        start = time.perf_counter()
        loss = loss_fn(model._logits(module, X), y)
        optimizer.zero_grad()
        loss.backward()
        mid = time.perf_counter()
        optimizer.step()
        end = time.perf_counter()
        if i >= 3:
            opt_time += end - mid
            train_time += end - start
    return batch, opt_time / steps, train_time / steps


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2, help="threads of the LSTM kernels")
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args(argv)
    print(f"median of {args.rounds} rounds x {args.steps} steps; LSTM kernels on {args.threads} threads "
          f"({'native' if native_lstm.available() else 'torch: ' + str(native_lstm.unavailable_reason())})")
    print(f"{'model':<16} {'batch':>5}  {'optimizer ms':>12}  {'train step ms':>13}  {'share':>6}")
    with native_lstm.threads(args.threads), intra_op_threads(1):
        for name in args.models.split(","):
            runs = [time_steps(name, args.steps) for _ in range(args.rounds)]
            opt = statistics.median(r[1] for r in runs) * 1e3
            step = statistics.median(r[2] for r in runs) * 1e3
            print(f"{name:<16} {runs[0][0]:>5}  {opt:12.3f}  {step:13.2f}  {opt / step:6.1%}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
