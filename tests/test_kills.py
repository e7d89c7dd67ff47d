"""Runs that survive any kill: a `chrombench run` subprocess killed with SIGKILL at chosen moments (the
first second, while its stores are created, half-way through a seed's save), then run again, leaves
exactly the records of a run never killed, and no staging leftovers. Two runs on one output folder
with different settings: the second is refused with a message."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chrombench.data import importer

TOY = str(Path(__file__).with_name("kill_toys.py")) + ":SlowSave"
pytestmark = pytest.mark.slow  # real processes: each run costs a few seconds of start-up


@pytest.fixture
def env(home, tmp_path, write_task_csvs):
    write_task_csvs(tmp_path / "src", n_genes=60)
    importer.import_dataset(tmp_path / "src", "tiny")
    return {**os.environ, "CHROMBENCH_HOME": str(home), "CHROMBENCH_WORKERS": "1"}


def command(out: Path, trials: int = 2) -> list[str]:
    return [sys.executable, "-m", "chrombench", "run", "-m", TOY, "-t", "tiny", "--trials", str(trials),
            "--seeds", "0,1", "--output-dir", str(out), "--no-progress", "--device", "cpu"]


def run(out: Path, env: dict, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(command(out, **kw), env=env, capture_output=True, text=True, timeout=300)


def records(out: Path) -> dict:
    """What a run leaves that a user reads: each seed's metrics, parameters and predictions."""
    found = {}
    for f in sorted((out / "results").rglob("seed-*.json")):
        rec = json.loads(f.read_text())
        found[f.name] = (rec["metrics"], rec["model"]["params"], rec["tuning"]["best_params"],
                         f.with_name(f.name.replace(".json", ".predictions.csv")).read_text())
    return found


def leftovers(out: Path) -> list[str]:
    return [str(p) for p in out.rglob(".*") if p.name.startswith((".seed-", ".mlflow.db", ".optuna.db"))]


def kill_when(out: Path, env: dict, ready, timeout: float = 120) -> None:
    """Start a run, SIGKILL its whole process group as soon as ``ready()`` holds."""
    proc = subprocess.Popen(command(out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    t0 = time.monotonic()
    while not ready() and proc.poll() is None and time.monotonic() - t0 < timeout:
        time.sleep(0.005)
    assert proc.poll() is None, "the run ended before the moment the test kills it at"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture
def clean(tmp_path, env):
    done = run(tmp_path / "clean", env)
    assert done.returncode == 0, done.stderr
    return records(tmp_path / "clean")


@pytest.mark.parametrize("moment", ["first second", "mlflow store creation", "seed save"])
def test_a_run_killed_at_any_moment_resumes_to_the_clean_records(tmp_path, env, clean, moment):
    out = tmp_path / "killed"
    t0 = time.monotonic()
    ready = {"first second": lambda: time.monotonic() - t0 > 1.0,
             # as soon as a store file appears, under its temporary name or its own
             "mlflow store creation": lambda: (out / ".mlflow.db.creating").exists() or (out / "mlflow.db").exists(),
             "seed save": lambda: any(out.glob("models/*/*/*/.seed-*"))}[moment]
    kill_when(out, {**env, "KILL_TOY_SAVE_SLEEP": "3"}, ready)
    again = run(out, env)
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    assert records(out) == clean
    assert leftovers(out) == []


def test_a_second_run_with_other_settings_on_the_same_folder_is_refused(tmp_path, env):
    out = tmp_path / "shared"
    first = subprocess.Popen(command(out, trials=2), env={**env, "KILL_TOY_SAVE_SLEEP": "2"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    while not (out / "run.json").exists() and time.monotonic() - t0 < 120:
        time.sleep(0.01)
    second = run(out, env, trials=3)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.returncode != 0
    assert "another run is working in" in second.stderr and "trials: 2 there, 3 here" in second.stderr
    assert "Traceback" not in second.stderr
    assert json.loads((out / "run.json").read_text())["trials"] == 2
