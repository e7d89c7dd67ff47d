"""bf16 autocast against float32 for the zoo's torch models, and Chromoformer's embedding attention
against another revision's: a training step and an inference pass, ratios within one run.

Each model runs as the trainer runs it (its default batch, its own optimizer and loss, torch on one
intra-op thread, the LSTM kernels on one thread), on random counts. One process; rounds alternate
the variants model by model and each variant keeps its best round, so the ratios compare like with
like on a shared machine:

- ``fp32``: the trainer's path, float32 throughout;
- ``bf16``: the same step with the forward pass under ``torch.autocast("cpu", dtype=torch.bfloat16)``
  (matrix products, convolutions and attention in bfloat16 on AMX / AVX512-BF16 where the CPU has
  them; the loss, the weights, their gradients and the optimizer's state in float32);
- ``rev fp32`` (Chromoformer only, when ``--rev``'s ``baselines/chromoformer.py`` differs from this
  tree's): that revision's ``EmbeddingTransformer.forward`` in place of this tree's, float32.

``speed``: the training step is forward, backward and optimizer step on one batch; the inference pass
is the trainer's validation forward (``PREDICT_BATCH`` genes at a time, inference mode) over ``--genes``
genes. CPU pressure (Linux PSI) is printed before and after: a number measured under pressure is
slower, the ratio within the run is what to read.

``auroc``: test AUROC of whole fits (the trainer's, early stopping included) on the quick suite's tasks
with each variant (bf16: every forward of the fit, its validation and its test prediction under
autocast), beside the shipped quick cell (``leaderboards/zoo``): its seed 0 and its seeds' sd. Early
stopping turns a change in rounding into another trajectory, so a variant moves a cell about as far
as another seed does; the reproducibility contract allows 0.03 across compute paths.

Usage: python benchmarks/bench_precision.py speed [--rounds 3] [--steps 10] [--genes 1024] [--rev main]
       python benchmarks/bench_precision.py auroc [--tasks E003 E112 E123] [--seed 0]
       (both: [--models chromoformer transferchrome deepchrome deepchrome2 hm-crnn])
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from chrombench.baselines import chromoformer, native_lstm
from chrombench.baselines.torch_trainer import PREDICT_BATCH, intra_op_threads, transform_counts
from chrombench.models.registry import get_model_class

REPO = Path(__file__).resolve().parents[1]
MODELS = ("chromoformer", "transferchrome", "deepchrome", "deepchrome2", "hm-crnn")
CPU = torch.device("cpu")


def cpu_pressure() -> str:
    try:
        return Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except OSError:
        return "n/a"


def revision_embedding_forward(rev: str):
    """``rev``'s ``EmbeddingTransformer.forward``, or None when its chromoformer.py is this tree's."""
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:baselines/chromoformer.py"], check=True,
                            capture_output=True, text=True).stdout
    if source == Path(chromoformer.__file__).read_text():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chromoformer_rev.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location("chrombench.baselines._chromoformer_rev", path)
        module = importlib.util.module_from_spec(spec)
        module.__package__ = "chrombench.baselines"  # its relative imports resolve to this tree's trainer
        spec.loader.exec_module(module)
    return module.EmbeddingTransformer.forward


class Bench:
    """One model's module, optimizer and inputs, built once; ``step`` and ``infer`` time them."""

    def __init__(self, name: str, genes: int):
        self.model = get_model_class(name)(seed=0, device="cpu")
        torch.manual_seed(0)
        self.module = self.model._build_module()
        self.batch = int(self.model.batch_size)
        rng = np.random.default_rng(0)
        self.X = transform_counts(rng.poisson(2.0, size=(self.batch, 100, 5)), self.model.input_transform, CPU)
        self.y = torch.as_tensor(rng.integers(0, 2, self.batch).astype(np.float32))
        self.Xv = transform_counts(rng.poisson(2.0, size=(genes, 100, 5)), self.model.input_transform, CPU)
        self.optimizer, self.loss_fn = self.model._optimizer(self.module), self.model._loss()

    def step(self, arithmetic, steps: int) -> float:
        """Mean seconds per training step (after two warm-up steps)."""
        self.module.train()
        for i in range(steps + 2):
            if i == 2:
                start = time.perf_counter()
            with arithmetic():
                logits = self.model._logits(self.module, self.X)
            loss = self.loss_fn(logits.float(), self.y)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        return (time.perf_counter() - start) / steps

    def infer(self, arithmetic) -> float:
        """Seconds for one inference pass over the genes (after one warm-up batch)."""
        self.module.eval()
        with torch.inference_mode(), arithmetic():
            self.model._logits(self.module, self.Xv[:PREDICT_BATCH])
            start = time.perf_counter()
            for lo in range(0, len(self.Xv), PREDICT_BATCH):
                self.model._logits(self.module, self.Xv[lo:lo + PREDICT_BATCH]).float()
            return time.perf_counter() - start


@contextlib.contextmanager
def embedding_forward(forward):
    """Chromoformer's embedding layers run ``forward`` (None: this tree's)."""
    cls = chromoformer.EmbeddingTransformer
    ours = cls.forward
    cls.forward = forward or ours
    try:
        yield
    finally:
        cls.forward = ours


def variants(name: str, rev_forward) -> dict:
    """Variant name -> context manager factory that sets its arithmetic."""
    out = {"fp32": contextlib.nullcontext, "bf16": lambda: torch.autocast("cpu", dtype=torch.bfloat16)}
    if name == "chromoformer" and rev_forward is not None:
        out["rev fp32"] = lambda: embedding_forward(rev_forward)
    return out


def speed(args, rev_forward) -> int:
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, 1 thread; "
          f"best of {args.rounds} rounds x {args.steps} steps; rev = {args.rev}"
          f"{'' if rev_forward else ' (its chromoformer.py is this one: no rev variant)'}")
    print(f"CPU pressure before: {cpu_pressure()}", flush=True)
    best: dict = {}
    with native_lstm.threads(1), intra_op_threads(1):
        benches = {name: Bench(name, args.genes) for name in args.models}
        for r in range(args.rounds):
            for name, bench in benches.items():
                for v, arithmetic in variants(name, rev_forward).items():
                    for what, seconds in (("step", bench.step(arithmetic, args.steps)), ("infer", bench.infer(arithmetic))):
                        best[name, what, v] = min(best.get((name, what, v), np.inf), seconds)
            print(f"round {r + 1}: " + ", ".join(f"{n} {w} {v} {s * 1e3:.1f} ms" for (n, w, v), s in best.items()
                                                if w == "step"), flush=True)
    print(f"CPU pressure after: {cpu_pressure()}\n")
    print(f"{'model':<16}{'batch':>6}  {'variant':<9}{'step':>10}{'fp32/it':>9}{'infer ' + str(args.genes):>13}{'fp32/it':>9}")
    for name, bench in benches.items():
        for v in variants(name, rev_forward):
            s, i = best[name, "step", v], best[name, "infer", v]
            s32, i32 = best[name, "step", "fp32"], best[name, "infer", "fp32"]
            print(f"{name:<16}{bench.batch:>6}  {v:<9}{s * 1e3:>8.2f}ms{s32 / s:>8.2f}x{i * 1e3:>11.1f}ms{i32 / i:>8.2f}x")
    return 0


def shipped_quick_cell(model: str, task: str, seed: int) -> tuple[float, float]:
    """The shipped quick cell's test AUROC at ``seed`` and its seeds' standard deviation (nan if absent)."""
    try:
        summary = json.loads((REPO / "leaderboards" / "zoo" / model / "records" / task / "summary.json").read_text())
        auroc = summary["metrics"]["test_auroc"]
        return float(auroc["values"][seed]), float(auroc["std"])
    except (OSError, KeyError, IndexError, ValueError):
        return float("nan"), float("nan")


def auroc(args, rev_forward) -> int:
    from chrombench.data.load import load_task
    from chrombench.evaluate import auroc as score

    print(f"test AUROC, quick suite, seed {args.seed}; d = variant - fp32; shipped: the zoo's quick cell", flush=True)
    print(f"{'model':<16}{'task':<6}{'variant':<10}{'AUROC':>8}{'|d|':>8}{'epochs':>8}{'shipped':>9}{'seed sd':>9}")
    worst = 0.0
    for name in args.models:
        cls = get_model_class(name)
        for task_name in args.tasks:
            task = load_task(task_name, quick=True)
            shipped, sd = shipped_quick_cell(name, task_name, args.seed)
            base = None
            for v, arithmetic in variants(name, rev_forward).items():
                model = cls(seed=args.seed, device="cpu")
                logits = model._logits  # every forward of the fit and of its predictions under the variant
                model._logits = lambda module, x, logits=logits, arithmetic=arithmetic: _under(arithmetic, logits,
                                                                                             module, x)
                model.fit(task.train, task.valid)
                got = score(np.asarray(task.test.y), model.predict_proba(task.test.X)[:, 1])
                base = got if base is None else base
                worst = max(worst, abs(got - base))
                print(f"{name:<16}{task_name:<6}{v:<10}{got:>8.4f}{abs(got - base):>8.4f}"
                      f"{len(model.history_['epochs']):>8}{shipped:>9.4f}{sd:>9.4f}", flush=True)
    print(f"largest |d AUROC| against fp32: {worst:.4f}")
    return 0


def _under(arithmetic, logits, module, x):
    with arithmetic():
        return logits(module, x).float()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("speed", "auroc"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10, help="speed: timed training steps per round")
    parser.add_argument("--genes", type=int, default=1024, help="speed: genes in the timed inference pass")
    parser.add_argument("--rev", default="main", help="the revision whose Chromoformer embedding layer is 'rev'")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--tasks", nargs="+", default=["E003", "E112", "E123"], help="auroc: quick-suite tasks")
    parser.add_argument("--seed", type=int, default=0, help="auroc: the fits' seed")
    args = parser.parse_args(argv)
    rev_forward = revision_embedding_forward(args.rev) if "chromoformer" in args.models else None
    return speed(args, rev_forward) if args.what == "speed" else auroc(args, rev_forward)


if __name__ == "__main__":
    sys.exit(main())
