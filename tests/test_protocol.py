"""The protocol: test labels are unreachable while tuning, by construction and at the data store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from chrombench import results
from chrombench.data.load import load_task
from chrombench.engine import evaluation
from chrombench.engine.run import RunConfig, run_evaluations
from chrombench.errors import ProtocolViolation

TOY = str(Path(__file__).with_name("engine_toy_models.py"))
GENES = {"train": 200, "valid": 100, "test": 100}


@pytest.fixture(scope="module")
def home(shared_home):
    """The session's shared data cache: E003 is simulated once."""
    return shared_home


@pytest.fixture(scope="module")
def task(home):
    return load_task("E003", "simremc", genes=GENES)


def config(tmp_path, model, **kw) -> RunConfig:
    return RunConfig(models=[model], tasks=["E003"], genes=GENES, seeds=[0, 1], trials=3,
                     output_dir=tmp_path / "out", **kw)


def test_tuning_view_withholds_the_test_split(task):
    view = evaluation.TuningView.of(task)
    assert len(view.train) == 200 and len(view.valid) == 100
    with pytest.raises(ProtocolViolation, match="withheld during tuning"):
        view.test
    with pytest.raises(ProtocolViolation):
        view.split("test")
    assert not hasattr(evaluation.TuningView, "truth")  # the simulator's latent scores are about test genes


def test_the_store_refuses_the_sealed_task_only(task):
    with evaluation.sealed_test("simremc", "E003"):
        with pytest.raises(ProtocolViolation, match="sealed"):
            load_task("E003", "simremc", genes=GENES)
        with pytest.raises(ProtocolViolation):
            load_task("e3")  # every spelling of the same task
    assert load_task("E003", "simremc", genes=GENES).test.y.sum() > 0  # unsealed again afterwards


def test_a_model_reading_test_labels_during_tuning_fails_clearly(tmp_path, task):
    with pytest.raises(ProtocolViolation, match="sealed"):
        run_evaluations(config(tmp_path, f"{TOY}:PeekingModel"), progress=False)
    assert not list((tmp_path / "out").rglob("seed-*.json")), "no record may come out of a violating run"


@pytest.mark.parametrize("cheat", ["ThreadPeekingModel", "ResimulatingModel", "DirectoryReadingModel"])
def test_every_way_through_chrombench_to_the_test_labels_is_closed(tmp_path, task, cheat):
    """From another thread, by re-running the simulator, or through the store's folder reader."""
    with pytest.raises(ProtocolViolation, match="sealed"):
        run_evaluations(config(tmp_path, f"{TOY}:{cheat}"), progress=False)
    assert not list((tmp_path / "out").rglob("seed-*.json"))


@pytest.mark.slow  # chrombench run in a subprocess
def test_the_test_split_is_not_in_memory_while_a_model_fits(tmp_path, task):
    """A model that scavenges memory (gc, callers' frames) during fit finds no test genes, and its
    train/valid splits are in-memory copies, not memory maps naming the cache folder."""
    import subprocess
    import sys

    sys.path.insert(0, str(Path(TOY).parent))
    from engine_toy_models import reachable_test_data

    test_ids = set(map(str, task.test.gene_ids))
    holder = task  # noqa: F841 - the detector must see what the test itself holds, or it proves nothing
    assert reachable_test_data(test_ids), "the detector finds test data when it is there"
    (tmp_path / "ids.txt").write_text("\n".join(sorted(test_ids)))
    spy = tmp_path / "spy.jsonl"
    env = {**__import__("os").environ, "CHROMBENCH_SPY": str(spy), "CHROMBENCH_TEST_IDS": str(tmp_path / "ids.txt")}
    cmd = [sys.executable, "-m", "chrombench", "run", "-m", f"{TOY}:ScavengingModel", "-t", "E003", "--genes",
           "200,100,100", "--trials", "3", "--seeds", "0-1", "--output-dir", str(tmp_path / "out"), "--no-progress"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    reports = [json.loads(line) for line in spy.read_text().splitlines()]
    assert len(reports) == 3 + 2  # every trial and every seed's refit looked
    assert all(r["found"] == [] for r in reports), reports
    assert not any(r["memmap"] for r in reports)


def test_an_honest_model_sees_test_data_only_after_tuning(tmp_path, monkeypatch, task):
    spy = tmp_path / "spy.jsonl"
    monkeypatch.setenv("CHROMBENCH_SPY", str(spy))
    run_evaluations(config(tmp_path, f"{TOY}:SpyModel"), progress=False)
    events = [json.loads(line) for line in spy.read_text().splitlines()]
    test_digest = _digest(task.test.X)
    fits = [i for i, e in enumerate(events) if e["event"] == "fit"]
    assert len(fits) == 3 + 2  # three trials, then one refit per seed
    first_seed_fit = fits[3]
    test_calls = [i for i, e in enumerate(events) if e["digest"] == test_digest]
    assert len(test_calls) == 2, "test is predicted exactly once per seed"
    assert min(test_calls) > first_seed_fit, "test data only after tuning ended"
    assert all(events[i]["event"] == "predict" and not events[i]["sealed"] for i in test_calls)
    assert all(e["sealed"] for e in events if e["event"] == "fit"), "every fit runs with the store sealed"
    for rec in results.read_records(tmp_path / "out" / "results", kind="seed"):
        assert rec["tuning"]["n_trials"] + rec["tuning"]["n_pruned"] == 3  # refits came after the full budget


def test_seed_and_device_reach_the_models_that_take_them():
    class WithRandomState:
        def __init__(self, alpha=1.0, random_state=None, device="cpu"):
            pass

    class WithNothing:
        def __init__(self, alpha=1.0):
            pass

    assert evaluation.fixed_params(WithRandomState, 7, "auto") == {"random_state": 7, "device": "auto"}
    assert evaluation.fixed_params(WithNothing, 7, "auto") == {}


def _digest(X) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(X, dtype="<i4").tobytes()).hexdigest()[:16]
