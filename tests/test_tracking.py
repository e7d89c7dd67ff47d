"""What a run leaves in MLflow (read back with MlflowClient), a real tracking server, and `chrombench ui`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient

from chrombench import results
from chrombench.data.load import load_task
from chrombench.engine.run import RunConfig, run_evaluations

TOY = str(Path(__file__).with_name("engine_toy_models.py"))
GENES = {"train": 200, "valid": 100, "test": 100}


@pytest.fixture(scope="module")
def home(shared_home):
    load_task("E003", "simremc", genes=GENES)
    return shared_home


@pytest.fixture(scope="module")
def tracked(home, tmp_path_factory):
    """One small run of a model with attention maps; its output folder."""
    out = tmp_path_factory.mktemp("run") / "out"
    summaries = run_evaluations(RunConfig(models=[f"{TOY}:AttentiveToy"], tasks=["E003"], genes=GENES, seeds=[0, 1],
                                          trials=3, output_dir=out), progress=False)
    return out, summaries[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for a in client.list_artifacts(run_id, path):
        found |= artifacts(client, run_id, a.path) if a.is_dir else {a.path}
    return found


def runs_by_kind(client: MlflowClient, experiment: str) -> dict[str, list]:
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment!r}"
    out: dict[str, list] = {}
    for r in client.search_runs([exp.experiment_id], max_results=1000):
        out.setdefault(r.data.tags["chrombench.kind"], []).append(r)
    return out


def test_parent_trial_and_seed_runs_with_tags(tracked):
    out, summary = tracked
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    runs = runs_by_kind(client, "chrombench/tasks/simremc")
    (parent,) = runs["parent"]
    assert parent.info.run_name == "attentive-toy · E003" and parent.info.status == "FINISHED"
    tags = parent.data.tags
    assert tags["chrombench.dataset.content_hash"] == summary["dataset"]["content_hash"]
    assert tags["chrombench.dataset.name"] == "simremc" and tags["chrombench.simulated"] == "true"
    assert tags["chrombench.protocol_version"] == results.PROTOCOL_VERSION
    assert tags["chrombench.code_version"] == results.code_version()
    assert tags["chrombench.task"] == "E003" and tags["chrombench.model.family"] == "test" and "chrombench.hardware" in tags
    assert sorted(r.info.run_name for r in runs["trial"]) == ["trial-0", "trial-1", "trial-2"]
    assert sorted(r.info.run_name for r in runs["seed"]) == ["seed-0", "seed-1"]
    for r in runs["trial"] + runs["seed"]:
        assert r.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert "lr" in r.data.params
        # searchable on their own in the UI (e.g. tags.`chrombench.task` = 'E003'), not only through the parent
        assert {k: r.data.tags[k] for k in ("chrombench.model", "chrombench.task", "chrombench.dataset.name")} == \
            {"chrombench.model": "attentive-toy", "chrombench.task": "E003", "chrombench.dataset.name": "simremc"}
    assert "best.lr" in tags and tags["chrombench.best_trial"].isdigit()
    assert parent.data.metrics["test_auroc_mean"] == pytest.approx(summary["metrics"]["test_auroc"]["mean"])


def test_per_epoch_and_final_metrics(tracked):
    out, summary = tracked
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    runs = runs_by_kind(client, "chrombench/tasks/simremc")
    seed0 = next(r for r in runs["seed"] if r.info.run_name == "seed-0")
    epochs = [m.step for m in client.get_metric_history(seed0.info.run_id, "train_loss")]
    assert epochs == [0, 1, 2, 3]  # the toy model trains 4 epochs
    assert len(client.get_metric_history(seed0.info.run_id, "valid_auroc")) == 5  # 4 epochs + the final value
    assert seed0.data.metrics["test_auroc"] == pytest.approx(summary["metrics"]["test_auroc"]["values"][0])
    for trial in runs["trial"]:
        if trial.data.tags["chrombench.state"] == "COMPLETE":
            assert 0.5 < trial.data.metrics["valid_auroc"] <= 1.0


def test_artifacts(tracked):
    out, _ = tracked
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    runs = runs_by_kind(client, "chrombench/tasks/simremc")
    got = artifacts(client, runs["parent"][0].info.run_id)
    assert {"best-model/config.json", "tuning/tuning_history.png", "tuning/tuning_history.csv",
            "attention/alpha_by_class.csv", "attention/beta_by_class.csv", "attention/attention.png"} <= got
    for seed in runs["seed"]:
        assert artifacts(client, seed.info.run_id) == {f"predictions/{seed.info.run_name}.predictions.csv"}
    alpha = (Path(client.download_artifacts(runs["parent"][0].info.run_id, "attention/alpha_by_class.csv"))
             .read_text().splitlines())
    assert alpha[0] == "class,mark,bin,mean_alpha" and len(alpha) == 1 + 2 * 5 * 100  # ON and OFF, 5 marks x 100 bins


def _wait_http(url: str, proc: subprocess.Popen, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read().decode(errors="replace")[-3000:]
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.status
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.slow
def test_against_a_real_tracking_server(home, tmp_path):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                               f"sqlite:///{tmp_path / 'server.db'}", "--artifacts-destination", str(tmp_path / "art"),
                               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        uri = f"http://127.0.0.1:{port}"
        assert _wait_http(uri + "/health", server, 90) == 200
        run_evaluations(RunConfig(models=[f"{TOY}:TinyLogistic"], tasks=["E003"], genes=GENES, seeds=[0], trials=2,
                                  tracking_uri=uri, output_dir=tmp_path / "out"), progress=False)
        client = MlflowClient(uri)
        runs = runs_by_kind(client, "chrombench/tasks/simremc")
        assert len(runs["parent"]) == 1 and len(runs["trial"]) == 2 and len(runs["seed"]) == 1
        assert "tuning/tuning_history.png" in artifacts(client, runs["parent"][0].info.run_id)
        assert not (tmp_path / "out" / "mlflow.db").exists()  # nothing tracked locally
    finally:
        _stop(server)


@pytest.mark.slow
def test_ui_serves_the_local_store(tracked):
    out, _ = tracked
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "chrombench", "ui", "--output-dir", str(out), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert _wait_http(f"http://127.0.0.1:{port}/", proc, 90) == 200
    finally:
        _stop(proc)
    assert f"http://127.0.0.1:{port}" in proc.stdout.read().decode()
