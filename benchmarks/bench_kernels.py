"""The fused LSTM kernels against those of another git revision (default ``main``), in one process.

The other revision's C sources (``baselines/native/*.c`` and headers) are built with that
revision's compiler flags into a library of their own, and its ``cb_prepare`` / ``cb_lstm_attend``
/ ``cb_lstm_backward`` replace this tree's for the "before" rounds; the Python around them is this
tree's. Their C signatures are checked against ``native_library.SIGNATURES`` first (a mismatch stops
the benchmark: calling through a stale signature would corrupt memory).

``speed``: AttentiveChrome on simulated E003 (6,601 training genes), in rounds that alternate the
kernels (before; this tree on AVX2; this tree on AVX-512 where the CPU has it), each keeping its best
round: a training epoch at batch 16 (the reference's) and at batch 128 (chrombench's default), as the
trainer reports it, and the validation pass over the 6,601 validation genes. Ratios are before/after.

``auroc``: test AUROC of fits on the quick suite's tasks (seed 0) with either kernel, to check that
the arithmetic's changes stay within the reproducibility tolerance.

The machine may be shared: CPU pressure (Linux PSI) is printed before and after.

Usage: python benchmarks/bench_kernels.py speed [--rev main] [--rounds 3]
       python benchmarks/bench_kernels.py auroc [--rev main] [--models attentivechrome lstm] [--tasks E003 E112 E123]
       (--variants avx2 avx512: this tree's instruction sets to run)
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
LSTM_ENTRY_POINTS = ("cb_prepare", "cb_lstm_attend", "cb_lstm_backward")


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, capture_output=True, text=True).stdout


def build_revision(rev: str):
    """The native library of ``rev`` (built once into the build folder), with the LSTM entry points' types set."""
    from chrombench.baselines import native_library as nl

    files = [p for p in _git("ls-tree", "--name-only", f"{rev}:baselines/native").split() if p.endswith((".c", ".h"))]
    flags_source = _git("show", f"{rev}:baselines/native_library.py")
    abi = re.search(r"^ABI_VERSION = (\d+)", flags_source, re.MULTILINE).group(1)
    flags = re.search(r"^FLAGS = \((.*?)\)$", flags_source, re.MULTILINE).group(1)
    flags = [f for f in re.findall(r'"([^"]+)"', flags) if not f.startswith("-DCB_ABI")] + [f"-DCB_ABI_VERSION={abi}"]
    texts = {name: _git("show", f"{rev}:baselines/native/{name}") for name in files}
    defined = nl.c_signatures("".join(t for n, t in texts.items() if n.endswith(".c")))
    for name in LSTM_ENTRY_POINTS:
        if defined.get(name) != nl.SIGNATURES[name]:
            raise SystemExit(f"{rev}'s {name} is not this tree's (C: {defined.get(name)}): cannot call it from here")
    digest = hashlib.sha256(("\0".join(texts[n] for n in sorted(texts)) + " ".join(flags)).encode()).hexdigest()[:16]
    target = nl.build_dir() / f"bench-{digest}.so"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            for name, text in texts.items():
                (Path(tmp) / name).write_text(text)
            sources = [str(Path(tmp) / n) for n in files if n.endswith(".c")]
            subprocess.run(["cc", *flags, *sources, "-o", str(target) + ".part", "-lm"], check=True)
            Path(str(target) + ".part").replace(target)
    lib = ctypes.CDLL(str(target))
    for name in LSTM_ENTRY_POINTS:
        ret, args = nl.SIGNATURES[name]
        getattr(lib, name).restype, getattr(lib, name).argtypes = ret, [kind for _, kind in args]
    return lib


@contextlib.contextmanager
def kernels(which: str, old_lib):
    """Run the LSTM kernels of ``which``: "before" (the other revision's) or this tree's on an ISA."""
    from chrombench.baselines import native_lstm

    if which == "before":
        real = native_lstm.function
        native_lstm.function = lambda name: getattr(old_lib, name) if name in LSTM_ENTRY_POINTS else real(name)
        try:
            yield
        finally:
            native_lstm.function = real
        return
    before = native_lstm.use_isa(which)
    try:
        yield
    finally:
        native_lstm.use_isa(before)


def _variants(wanted: list[str]) -> list[str]:
    """``wanted`` ("before" first), less an instruction set the CPU lacks."""
    from chrombench.baselines import native_lstm

    out = ["before"]
    for name in (w for w in wanted if w != "before"):
        try:
            native_lstm.use_isa(native_lstm.use_isa(name))
            out.append(name)
        except ValueError as exc:
            print(f"({name} not measured: {exc})")
    return out


def cpu_pressure() -> str:
    try:
        return Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except OSError:
        return "n/a"


def speed(args, old_lib) -> int:
    import torch

    from chrombench.baselines import native_lstm
    from chrombench.baselines.attentivechrome import AttentiveChrome
    from chrombench.baselines.torch_trainer import _validate, transform_counts
    from chrombench.data.load import load_task

    data = load_task("E003")
    variants = _variants(args.variants)
    best: dict = {}
    print(f"CPU pressure before: {cpu_pressure()}")
    for r in range(args.rounds):
        for which in variants:
            with kernels(which, old_lib):
                for batch in (16, 128):
                    model = AttentiveChrome(epochs=1, device="cpu", batch_size=batch).fit(data.train, None)
                    key = (which, f"epoch, batch {batch}")
                    best[key] = min(best.get(key, np.inf), model.history_["epochs"][0]["epoch_time"])
                # the trainer's validation pass, as each epoch runs it (same genes, same metric)
                Xv = transform_counts(data.valid.X, model.input_transform, torch.device("cpu"))
                with native_lstm.threads(native_lstm.default_threads()):
                    start = time.perf_counter()
                    _validate(model, model.module_, Xv, np.asarray(data.valid.y, np.int8), model._loss())
                key = (which, "validation pass")
                best[key] = min(best.get(key, np.inf), time.perf_counter() - start)
        print(f"round {r + 1}: " + ", ".join(f"{w} {k} {v:.2f} s" for (w, k), v in best.items()), flush=True)
    print(f"CPU pressure after: {cpu_pressure()}\n")
    print(f"{'AttentiveChrome, simremc E003':<28}" + "".join(f"{w:>10}" for w in variants) +
          "".join(f"{'before/' + w:>16}" for w in variants[1:]))
    for what in ("epoch, batch 16", "epoch, batch 128", "validation pass"):
        row = [best[(w, what)] for w in variants]
        print(f"{what:<28}" + "".join(f"{v:>9.2f}s" for v in row) + "".join(f"{row[0] / v:>15.2f}x" for v in row[1:]))
    return 0


def auroc(args, old_lib) -> int:
    from chrombench.data.load import load_task
    from chrombench.evaluate import auroc as score
    from chrombench.models.registry import get_model_class

    variants = _variants(args.variants)
    print(f"{'model':<18}{'task':<6}" + "".join(f"{w:>10}" for w in variants) +
          "".join(f"{'d ' + w:>12}" for w in variants[1:]), flush=True)
    worst = 0.0
    for name in args.models:
        cls = get_model_class(name)
        for task_name in args.tasks:
            task = load_task(task_name, quick=True)
            got = []
            for which in variants:
                with kernels(which, old_lib):
                    model = cls(seed=0, device="cpu").fit(task.train, task.valid)
                    got.append(score(np.asarray(task.test.y), model.predict_proba(task.test.X)[:, 1]))
            deltas = [g - got[0] for g in got[1:]]
            worst = max([worst] + [abs(d) for d in deltas])
            print(f"{name:<18}{task_name:<6}" + "".join(f"{g:>10.4f}" for g in got) +
                  "".join(f"{d:>+12.4f}" for d in deltas), flush=True)
    print(f"largest |delta AUROC|: {worst:.4f} (tolerance {args.tolerance})")
    return 0 if worst <= args.tolerance else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("speed", "auroc"))
    parser.add_argument("--rev", default="main", help="the git revision whose kernels are 'before'")
    parser.add_argument("--rounds", type=int, default=3, help="speed: alternating rounds (best kept)")
    parser.add_argument("--models", nargs="+", default=["attentivechrome", "lstm"])
    parser.add_argument("--tasks", nargs="+", default=["E003", "E112", "E123"])
    parser.add_argument("--variants", nargs="+", default=["avx2", "avx512"], choices=("avx2", "avx512"),
                        help="this tree's instruction sets to compare with the revision's kernels")
    parser.add_argument("--tolerance", type=float, default=0.002, help="auroc: largest |delta| that passes")
    args = parser.parse_args(argv)

    from chrombench.baselines import native_lstm

    if not native_lstm.available():
        print(f"fused kernels not in use ({native_lstm.unavailable_reason()}): nothing to compare")
        return 1
    old_lib = build_revision(args.rev)
    return speed(args, old_lib) if args.what == "speed" else auroc(args, old_lib)


if __name__ == "__main__":
    sys.exit(main())
