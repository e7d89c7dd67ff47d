"""The trainer's native optimizer step (``native/adam_step.c``) against torch's fused Adam + clip_grad_norm_.

Whether the native step earns its C file: both optimizers run on AttentiveChrome's parameters in the
same process, interleaved round by round, as the trainer runs them (torch on one intra-op thread, the
LSTM kernels on ``--threads``). Two measurements at batch 16 and at 128 (AttentiveChrome's default):

- ``step``: the optimizer alone (clip, Adam, zero_grad) after a real backward pass's gradients;
- ``train step``: forward, backward and the optimizer together, i.e. what a fit's epoch is made of.

A ratio above 1 means torch takes longer than the native step. The optimizer's work does not depend on
the batch (it touches each parameter once); its share of a training step does.

Usage: python benchmarks/bench_adam.py [--rounds 5] [--steps 40] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch
from torch import nn

from chrombench.baselines import native_library, native_lstm
from chrombench.baselines.attentivechrome import AttentiveChrome
from chrombench.baselines.torch_trainer import ClippedAdam, transform_counts


class TorchClippedAdam:
    """The baseline: ``clip_grad_norm_`` then torch's fused Adam (what ClippedAdam computes natively)."""

    def __init__(self, module: nn.Module, lr: float, weight_decay: float, clip: float):
        self.params = [p for p in module.parameters() if p.requires_grad]
        self.clip = clip
        self.adam = torch.optim.Adam(self.params, lr=lr, weight_decay=weight_decay, fused=True)

    def zero_grad(self) -> None:
        self.adam.zero_grad(set_to_none=True)

    def step(self) -> None:
        nn.utils.clip_grad_norm_(self.params, self.clip)
        self.adam.step()


def setup(batch: int, optimizer_cls):
    model = AttentiveChrome(seed=0)
    module = model._build_module()
    rng = np.random.default_rng(0)
    X = transform_counts(rng.poisson(2.0, size=(batch, 100, 5)).astype(np.int32), model.input_transform,
                         torch.device("cpu"))
    y = torch.as_tensor(rng.integers(0, 2, batch).astype(np.float32))
    optimizer = optimizer_cls(module, float(model.lr), float(model.weight_decay), float(model.clip_norm or 1.0))
    return model, module, X, y, optimizer


def time_steps(batch: int, optimizer_cls, steps: int) -> tuple[float, float]:
    """Mean seconds per optimizer step and per whole training step."""
    model, module, X, y, optimizer = setup(batch, optimizer_cls)
    loss_fn = nn.BCEWithLogitsLoss()
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
    return opt_time / steps, train_time / steps


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2, help="threads of the LSTM kernels (the trainer's default: "
                                                                "torch's thread count)")
    args = parser.parse_args(argv)
    if not native_library.available():
        print(f"the native library is not available here: {native_library.unavailable_reason()}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    print(f"AttentiveChrome, {sum(p.numel() for p in AttentiveChrome()._build_module().parameters()):,} parameters; "
          f"median of {args.rounds} rounds x {args.steps} steps; LSTM kernels on {args.threads} threads")
    print(f"{'batch':>5}  {'what':<10}  {'native ms':>9}  {'torch ms':>8}  {'torch / native':>14}")
    with native_lstm.threads(args.threads):
        for batch in (16, 128):
            runs: dict[str, list[tuple[float, float]]] = {"native": [], "torch": []}
            for _ in range(args.rounds):
                for name, cls in (("native", ClippedAdam), ("torch", TorchClippedAdam)):
                    runs[name].append(time_steps(batch, cls, args.steps))
            for k, what in enumerate(("step", "train step")):
                native = statistics.median(r[k] for r in runs["native"]) * 1e3
                torch_ms = statistics.median(r[k] for r in runs["torch"]) * 1e3
                print(f"{batch:>5}  {what:<10}  {native:9.3f}  {torch_ms:8.3f}  {torch_ms / native:13.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
