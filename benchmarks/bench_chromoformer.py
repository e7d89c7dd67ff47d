"""Chromoformer's training step: the published all-tokens embedding layer against chrombench's TSS-only one.

The embedding transformers' output is read at one token (the TSS), so chrombench computes only that
token's query, attention, norms and feed-forward, scores and averages the marks through (W_k W_e)
and (W_v W_e) without forming keys or values, and steps with fused AdamW (tests/test_later_models.py
checks it is the same function). The baseline, measured in the same run and interleaved with it
round by round, is the layer as published
(``EmbeddingTransformer.forward_all_tokens``: every token through the layer) with torch's default
AdamW, as the model first shipped. One training step = forward, backward and optimizer step on a
batch of 64 genes (the published batch size) of Poisson counts, one thread, best of ``--rounds``.

Also one full-size epoch estimate (6,601 training genes = 104 steps) for each.

Target: the step >= 2.5x faster than the baseline. Exit status 1 if missed.

Usage: python benchmarks/bench_chromoformer.py [--rounds 5] [--steps 20]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn.functional as F
from chrombench.baselines.chromoformer import ChromoformerNet, EmbeddingTransformer

SPEEDUP_TARGET = 2.5
BATCH = 64
FULL_SIZE_STEPS = -(-6601 // BATCH)


def step_seconds(all_tokens: bool, steps: int) -> float:
    torch.manual_seed(0)
    net = ChromoformerNet()
    if all_tokens:
        for layer in net.embed:
            layer.forward = layer.forward_all_tokens
    opt = torch.optim.AdamW(net.parameters(), lr=3e-5, weight_decay=0.01, fused=not all_tokens)
    x = torch.poisson(torch.rand(BATCH, 100, 5) * 3)
    y = torch.randint(0, 2, (BATCH,)).float()

    def step():
        opt.zero_grad(set_to_none=True)
        F.binary_cross_entropy_with_logits(net(x), y).backward()
        opt.step()

    for _ in range(3):  # warm-up: allocator, kernels
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    assert EmbeddingTransformer.forward is not EmbeddingTransformer.forward_all_tokens
    base, ours = [], []
    for r in range(args.rounds):
        base.append(step_seconds(True, args.steps))
        ours.append(step_seconds(False, args.steps))
        print(f"round {r + 1}: published layer {base[-1] * 1e3:6.1f} ms   TSS-only {ours[-1] * 1e3:6.1f} ms")
    b, o = min(base), min(ours)
    speedup = b / o
    ok = speedup >= SPEEDUP_TARGET
    print(f"\ntraining step, batch {BATCH}, 1 thread: {b * 1e3:.1f} -> {o * 1e3:.1f} ms  "
          f"speedup {speedup:.2f}x (target >= {SPEEDUP_TARGET}x) {'PASS' if ok else 'FAIL'}")
    print(f"full-size epoch ({FULL_SIZE_STEPS} steps, no validation): {b * FULL_SIZE_STEPS:.1f} -> "
          f"{o * FULL_SIZE_STEPS:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
