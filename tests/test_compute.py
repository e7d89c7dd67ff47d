"""What a fit computed on (``compute`` in every engine record), and what does not depend on a C compiler."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from chrombench import results
from chrombench.data.load import load_task
from chrombench.engine.run import RunConfig, run_evaluations

ROOT = Path(__file__).resolve().parents[1]
TOY = str(Path(__file__).with_name("engine_toy_models.py"))
GENES = {"train": 200, "valid": 100, "test": 100}


@pytest.fixture(scope="module")
def home(shared_home):
    load_task("E003", "simremc", genes=GENES)  # simulated once for the session (shared_home)
    return shared_home


@pytest.mark.parametrize("clip, weight_decay", [(1.0, 0.0), (0.05, 1e-3), (0.0, 0.0)], ids=["clip", "clip-decay", "none"])
def test_the_trainer_step_is_torch_clipping_then_adam(clip, weight_decay):
    """ClippedAdam is clip_grad_norm_ then torch.optim.Adam, and a learning-rate cut scales the steps."""
    from chrombench.baselines.torch_trainer import ClippedAdam, _scale_lr

    torch.manual_seed(0)
    ours, ref = (torch.nn.Sequential(torch.nn.Linear(7, 33), torch.nn.Linear(33, 1)) for _ in range(2))
    ref.load_state_dict(ours.state_dict())
    step = ClippedAdam(ours, lr=1e-2, weight_decay=weight_decay, clip=clip)
    adam = torch.optim.Adam(ref.parameters(), lr=1e-2, weight_decay=weight_decay)
    for i in range(25):
        if i == 15:
            _scale_lr(step, 0.2)
            _scale_lr(adam, 0.2)
        x = torch.randn(16, 7) * (1 + i % 3)  # some steps clip, some do not
        for net in (ours, ref):
            net.zero_grad(set_to_none=True)
            (net(x) ** 2).mean().backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(ref.parameters(), clip)
        adam.step()
        step.step()
        step.zero_grad()
    for a, b in zip(ours.parameters(), ref.parameters()):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), (a - b).abs().max()
    assert all(p.grad is None for p in ours.parameters())


FIT_DEEPCHROME = """
import json, sys
import numpy as np
from chrombench.baselines.deepchrome import DeepChrome
from chrombench.data.arrays import Split

def split(n, seed):
    rng = np.random.default_rng(seed)
    return Split(np.array([f"g{seed}-{i}" for i in range(n)]), rng.negative_binomial(1, 0.3, (n, 100, 5)).astype(np.int32),
                 (np.arange(n) % 2).astype(np.int8))

train, valid, test = split(96, 0), split(48, 1), split(48, 2)
model = DeepChrome(epochs=3, batch_size=32, seed=0, device="cpu").fit(train, valid)
print(json.dumps({"p": model.predict_proba(test.X)[:, 1].tolist(), "compute": model.compute_report()}))
"""


def _fit_in_a_new_process(env: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", FIT_DEEPCHROME], env={**os.environ, **env}, capture_output=True,
                          text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


def _fit_here() -> dict:
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(FIT_DEEPCHROME, {"__name__": "fit_deepchrome"})
    return json.loads(printed.getvalue().splitlines()[-1])


def test_a_model_without_native_layers_computes_the_same_without_a_compiler(tmp_path, single_thread_torch):
    """DeepChrome has no layer the native kernels run, and its optimizer step is torch's: with the
    native library turned off (as without a C compiler) its predictions are the same, bit for bit. The
    fit without it runs in a process that never loaded the library; the one with it, here."""
    from chrombench.baselines import native_library

    with_native = _fit_here()
    if native_library.available():
        assert native_library.isa() is not None  # the library is loaded in this process, next to the fit
    without = _fit_in_a_new_process({"CHROMBENCH_NATIVE": "0"})
    assert with_native["p"] == without["p"]
    for got in (with_native, without):
        assert got["compute"]["path"] == "torch" and got["compute"]["isa"] is None
        assert got["compute"]["optimizer"].startswith("torch.optim.Adam(")
        assert got["compute"]["torch"] == torch.__version__ and got["compute"]["threads"] == 1
        assert got["compute"]["torch_cpu"] == torch.backends.cpu.get_cpu_capability()


def test_a_recurrent_fit_says_which_lstm_path_ran(single_thread_torch, monkeypatch):
    """AttentiveChrome on the fused kernels says native (and the ISA); on nn.LSTM it says torch."""
    from chrombench.baselines import native_library, native_lstm
    from chrombench.baselines.attentivechrome import AttentiveChrome
    from conftest import random_split

    train, valid = random_split(64, 0), random_split(32, 1)

    def fit():
        return AttentiveChrome(epochs=1, batch_size=32, seed=0, device="cpu").fit(train, valid).compute_report()

    report = fit()
    if native_library.available():
        assert report["path"] == "native" and report["isa"] == native_library.isa() and report["threads"] >= 1
    else:
        assert report["path"] == "torch" and report["isa"] is None
    monkeypatch.setattr(native_lstm, "available", lambda: False)  # as without a compiler
    report = fit()
    assert report["path"] == "torch" and report["isa"] is None and report["threads"] == 1


def test_records_carry_the_compute_block_inside_their_digest(tmp_path, home):
    """Every engine record says what it computed on, the summary per seed; an edit to it is detected as
    an edit to the number would be."""
    out = tmp_path / "out"
    run_evaluations(RunConfig(models=[f"{TOY}:TinyLogistic"], tasks=["E003"], genes=GENES, seeds=[0, 1], trials=0,
                              output_dir=out), progress=False)
    seed = json.loads(results.seed_path(out, "simremc", "tiny-logistic", "E003", 0).read_text())
    summary = json.loads(results.summary_path(out, "simremc", "tiny-logistic", "E003").read_text())
    assert seed["compute"]["path"] == "unknown" and seed["compute"]["torch"] == torch.__version__
    assert summary["compute"] == [seed["compute"], seed["compute"]]
    assert results.problems(seed) == [] and results.problems(summary) == []
    edited = {**seed, "compute": {**seed["compute"], "path": "native"}}
    assert any("digest does not match" in p for p in results.problems(edited))
    bad = results.seal({k: v for k, v in seed.items() if k != "digest"} | {"compute": {"path": "gpu-magic"}})
    assert any(p.startswith("compute") for p in results.problems(bad))


def test_records_written_before_the_compute_block_still_validate_and_load():
    """The shipped bundles predate the block: they validate, load, and summarize as before."""
    folder = ROOT / "leaderboards" / "zoo" / "deepchrome" / "records" / "E003"
    seeds = [json.loads((folder / f"seed-{k}.json").read_text()) for k in range(3)]
    assert all("compute" not in r and results.problems(r) == [] for r in seeds)
    assert "compute" not in results.summarize(seeds)
    loaded = results.read_records(folder, kind="seed")
    assert len(loaded) == 3
    from chrombench.models.compute import describe

    assert describe(seeds[0].get("compute")) == "not recorded"
    assert np.isclose(results.summarize(seeds)["metrics"]["test_auroc"]["mean"],
                      np.mean([r["metrics"]["test"]["auroc"] for r in seeds]))
