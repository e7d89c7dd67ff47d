"""``chrombench run`` / ``run_evaluations``: records, budgets, resume after SIGKILL, errors before work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner

from chrombench import results
from chrombench.cli import main
from chrombench.data.load import load_task
from chrombench.engine.run import RunConfig, run_evaluations
from chrombench.errors import ChrombenchError, UnknownNameError
from chrombench.models.io import load_model

TOY = str(Path(__file__).with_name("engine_toy_models.py"))
GENES = {"train": 200, "valid": 100, "test": 100}
GENES_CLI = "200,100,100"


@pytest.fixture(scope="module")
def home(shared_home):
    load_task("E003", "simremc", genes=GENES)  # simulated once for the session (shared_home)
    return shared_home


def problems(rec: dict) -> list[str]:
    """results.problems of a record from read_records (which adds the bookkeeping key _path)."""
    return results.problems({k: v for k, v in rec.items() if k != "_path"})


def config(out: Path, models, **kw) -> RunConfig:
    base = dict(models=models, tasks=["E003"], genes=GENES, seeds=[0, 1, 2], trials=4, output_dir=out)
    return RunConfig(**{**base, **kw})


def study_trials(out: Path) -> list:
    names = optuna.get_all_study_names(f"sqlite:///{out / 'optuna.db'}")
    assert len(names) == 1
    return optuna.load_study(study_name=names[0], storage=f"sqlite:///{out / 'optuna.db'}").get_trials()


def test_records_predictions_models_and_budget(tmp_path, home):
    out = tmp_path / "out"
    summaries = run_evaluations(config(out, [f"{TOY}:TinyLogistic"]), progress=False)
    assert len(summaries) == 1 and not results.problems(summaries[0])
    s = summaries[0]
    assert s["model"]["name"] == "tiny-logistic" and s["model"]["target"].endswith("engine_toy_models.py:TinyLogistic")
    assert s["seeds"] == [0, 1, 2] and s["task"]["genes"] == GENES
    assert s["tuning"]["n_trials"] + s["tuning"]["n_pruned"] == 4 and s["tuning"]["budget_trials"] == 4
    assert 0.5 < s["metrics"]["test_auroc"]["mean"] <= 1.0
    data = load_task("E003", "simremc", genes=GENES)
    for seed in (0, 1, 2):
        path = results.seed_path(out, "simremc", "tiny-logistic", "E003", seed)
        rec = json.loads(path.read_text())
        assert not results.problems(rec) and rec["seed"] == seed and rec["model"]["params"]["seed"] == seed
        assert rec["dataset"]["content_hash"] == data.dataset.content_hash and rec["dataset"]["simulated"] is True
        lines = path.with_name(f"seed-{seed}.predictions.csv").read_text().splitlines()
        assert lines[0] == "gene_id,probability,label" and len(lines) == 1 + len(data.test)
        ids, labels = zip(*[(ln.split(",")[0], int(ln.split(",")[2])) for ln in lines[1:]])
        assert list(ids) == list(data.test.gene_ids) and list(labels) == list(data.test.y)  # leading zeros kept
        model = load_model(out / "models" / "simremc" / "tiny-logistic" / "E003" / f"seed-{seed}", trust_code=True)
        probs = [float(ln.split(",")[1]) for ln in lines[1:]]
        assert abs(model.predict_proba(data.test.X)[:, 1] - probs).max() < 1e-6  # saved model = evaluated model
    assert len([t for t in study_trials(out) if t.state.is_finished()]) == 4


def test_rerun_reuses_everything_and_strategies(tmp_path, home):
    out = tmp_path / "out"
    cfg = config(out, [f"{TOY}:TinyLogistic"], trials=3, seeds=[0, 1])
    first = run_evaluations(cfg, progress=False)[0]
    seed0 = results.seed_path(out, "simremc", "tiny-logistic", "E003", 0)
    stamp = seed0.read_bytes()
    again = run_evaluations(cfg, progress=False)[0]  # only-missing: nothing to do
    assert again["digest"] == first["digest"] and seed0.read_bytes() == stamp
    assert len(study_trials(out)) == 3

    more = run_evaluations(config(out, [f"{TOY}:TinyLogistic"], trials=3, seeds=[0, 1, 2]), progress=False)[0]
    assert more["seeds"] == [0, 1, 2] and seed0.read_bytes() == stamp  # only seed 2 was computed

    never = run_evaluations(config(out, [f"{TOY}:TinyLogistic"], trials=5, seeds=[0, 1, 2, 3],
                                   overwrite_strategy="never"), progress=False)
    assert never[0]["digest"] == more["digest"] and not results.seed_path(out, "simremc", "tiny-logistic", "E003", 3).exists()

    redo = run_evaluations(config(out, [f"{TOY}:TinyLogistic"], trials=3, seeds=[0, 1, 2],
                                  overwrite_strategy="always"), progress=False)[0]
    assert seed0.read_bytes() != stamp and not results.problems(redo)
    assert len(study_trials(out)) == 3  # a fresh study, not 3 more trials on top

    other = {"train": 150, "valid": 100, "test": 100}  # other data: the records above are not "done" for it
    moved = run_evaluations(config(out, [f"{TOY}:TinyLogistic"], trials=2, seeds=[0, 1, 2], genes=other),
                            progress=False)[0]
    assert moved["dataset"]["content_hash"] == load_task("E003", "simremc", genes=other).dataset.content_hash
    for seed in (0, 1, 2):
        rec = json.loads(results.seed_path(out, "simremc", "tiny-logistic", "E003", seed).read_text())
        assert rec["dataset"]["content_hash"] == moved["dataset"]["content_hash"]  # never a mixed summary


def test_one_failing_model_does_not_stop_the_others(tmp_path, home):
    """The CLI finishes what works, prints it, names what failed, and exits 1; a rerun keeps the rest."""
    args = ["run", "-m", f"{TOY}:Broken", "-m", f"{TOY}:TinyLogistic", "-t", "E003", "--genes", GENES_CLI,
            "--trials", "2", "--seeds", "0", "--output-dir", str(tmp_path / "out"), "--no-progress"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 1
    assert "broken · E003: " in res.output and "this model has a bug" in res.output
    assert "tiny-logistic" in res.output.split("failed")[0]  # the table of what worked came first
    assert results.summary_path(tmp_path / "out", "simremc", "tiny-logistic", "E003").exists()
    assert not results.summary_path(tmp_path / "out", "simremc", "broken", "E003").exists()


def test_empty_search_space_needs_one_trial(tmp_path, home):
    s = run_evaluations(config(tmp_path / "out", [f"{TOY}:Constant"], trials=5, seeds=[0]), progress=False)[0]
    assert s["tuning"]["n_trials"] == 1 and s["tuning"]["budget_trials"] == 1


def test_names_are_checked_before_any_work(tmp_path, home):
    with pytest.raises(UnknownNameError, match="did you mean 'attentivechrome'"):
        run_evaluations(config(tmp_path / "out", ["attentivchrome"]), progress=False)
    with pytest.raises(UnknownNameError, match="unknown task 'E0033'; did you mean 'E003'"):
        run_evaluations(config(tmp_path / "out", [f"{TOY}:TinyLogistic"], tasks=["E0033"]), progress=False)
    with pytest.raises(UnknownNameError, match="unknown dataset 'simremcc'; did you mean 'simremc'"):
        run_evaluations(config(tmp_path / "out", [f"{TOY}:TinyLogistic"], dataset="simremcc"), progress=False)
    res = CliRunner().invoke(main, ["run", "-m", "xgbost", "--output-dir", str(tmp_path / "o2")])
    assert res.exit_code == 2 and "did you mean 'xgboost'" in res.output


def test_unreachable_storage_and_tracking_fail_fast(tmp_path, home):
    t0 = time.monotonic()
    with pytest.raises(ChrombenchError, match="cannot reach --storage"):
        run_evaluations(config(tmp_path / "out", [f"{TOY}:TinyLogistic"],
                               storage="postgresql://nobody@127.0.0.1:9/none"), progress=False)
    res = CliRunner().invoke(main, ["run", "-m", "logistic-regression", "-t", "E003", "--output-dir", str(tmp_path / "o"),
                                    "--tracking-uri", "http://127.0.0.1:9"])
    assert res.exit_code == 1 and "cannot reach --tracking-uri http://127.0.0.1:9" in res.output
    assert time.monotonic() - t0 < 30
    res = CliRunner().invoke(main, ["run", "-m", "logistic-regression", "-t", "E003", "--data", "remc",
                                    "--output-dir", str(tmp_path / "o3")])
    assert res.exit_code == 1 and "chrombench data fetch" in res.output  # how to get the real data
    assert not list(tmp_path.rglob("*.json")), "nothing may be written before the check"


def test_cli_runs_a_zoo_model_and_prints_the_table(tmp_path, home):
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["run", "-m", "logistic-regression", "-t", "E003", "--genes", GENES_CLI,
                                    "--trials", "2", "--seeds", "0-1", "--output-dir", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "logistic-regression" in res.output and "E003" in res.output
    assert f"chrombench ui --output-dir {out}" in res.output
    recs = results.read_records(out / "results")
    assert sorted(r["kind"] for r in recs) == ["seed", "seed", "summary"] and not any(problems(r) for r in recs)


@pytest.mark.slow
def test_resume_after_sigkill(tmp_path, home):
    """SIGKILL mid-tuning, then mid-seeds; each restart continues; the end state is exact."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "chrombench", "run", "-m", f"{TOY}:TinyLogistic", "-t", "E003", "--genes", GENES_CLI,
           "--trials", "6", "--seeds", "0-2", "--output-dir", str(out), "--no-progress"]
    env = {**os.environ, "CHROMBENCH_TOY_SLEEP": "0.1", "CHROMBENCH_HOME": str(home)}

    def finished_trials() -> int:
        # read-only: opening it through optuna would create the schema, racing the run doing the same
        import sqlite3

        path = out / "optuna.db"
        if not path.exists():
            return 0
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
                return conn.execute("SELECT count(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')").fetchone()[0]
        except sqlite3.Error:  # the schema is not there yet
            return 0

    def run_until(cond) -> None:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while not cond():
            assert proc.poll() is None, f"finished before it could be killed: {proc.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    run_until(lambda: finished_trials() >= 2)
    killed_at = finished_trials()
    assert killed_at < 6
    seed_files = lambda: list((out / "results").rglob("seed-*.json")) if (out / "results").exists() else []
    run_until(lambda: len(seed_files()) >= 1)
    assert len(seed_files()) < 3
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]

    trials = study_trials(out)
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 6, "exactly the budget, no duplicates"
    assert len({t.number for t in trials}) == len(trials)
    assert all(t.state.name != "RUNNING" for t in trials)  # killed trials were marked FAIL and redone
    recs = results.read_records(out / "results")
    assert sorted((r["kind"], r.get("seed")) for r in recs) == [("seed", 0), ("seed", 1), ("seed", 2), ("summary", None)]
    assert not any(problems(r) for r in recs)
    assert all(r["tuning"]["n_trials"] + r["tuning"]["n_pruned"] == 6 for r in recs)
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("chrombench/tasks/simremc").experiment_id], max_results=500)
    kinds = [r.data.tags["chrombench.kind"] for r in runs]
    assert kinds.count("parent") == 1, "the restarted runs continue the same parent run"
    assert not [r.info.run_name for r in runs if r.info.status == "RUNNING"], "killed runs are marked, not left running"
    tracked = {r.info.run_name: r.data.tags["chrombench.state"] for r in runs if r.data.tags["chrombench.kind"] == "trial"}
    assert {f"trial-{t.number}": t.state.name for t in trials if t.state.name != "FAIL"}.items() <= tracked.items()
    seed_runs = sorted(r.info.run_name for r in runs if r.data.tags["chrombench.kind"] == "seed")
    assert seed_runs == ["seed-0", "seed-1", "seed-2"], "a killed seed's attempt does not stay beside its redo"

    # the same command never interrupted gives the same records: a killed trial is redone with the
    # parameters it would have had (its slot's sampler seed, the same history)
    clean = tmp_path / "clean"
    done = subprocess.run([*cmd[:-2], str(clean), "--no-progress"], env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]

    def outcome(root):
        return {r["seed"]: (r["metrics"], r["model"]["params"], r["tuning"]["best_params"], r["training"])
                for r in results.read_records(root / "results", kind="seed")}

    assert outcome(out) == outcome(clean), "a resumed run must equal an uninterrupted one"


def test_a_larger_budget_continues_the_study_and_refits_every_seed(tmp_path, home):
    """--trials 2, then --trials 8 with more seeds: one winner for every seed and for the summary."""
    out = tmp_path / "out"
    first = run_evaluations(config(out, [f"{TOY}:TinyLogistic"], trials=2, seeds=[0]), progress=False)[0]
    grown = run_evaluations(config(out, [f"{TOY}:TinyLogistic"], trials=8, seeds=[0, 1]), progress=False)[0]
    assert first["tuning"]["best_params"] != grown["tuning"]["best_params"], "the bigger budget found a new winner"
    assert len([t for t in study_trials(out) if t.state.is_finished()]) == 8  # continued, not restarted
    seeds = [json.loads(results.seed_path(out, "simremc", "tiny-logistic", "E003", s).read_text()) for s in (0, 1)]
    for rec in seeds:
        assert rec["tuning"]["best_params"] == grown["tuning"]["best_params"]
        assert {k: rec["model"]["params"][k] for k in ("lr", "l2")} == grown["tuning"]["best_params"]
    assert grown["metrics"]["test_auroc"]["values"] == [r["metrics"]["test"]["auroc"] for r in seeds]
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name("chrombench/tasks/simremc").experiment_id
    parent = next(r for r in client.search_runs([exp]) if r.data.tags["chrombench.kind"] == "parent")
    assert float(parent.data.tags["best.lr"]) == pytest.approx(grown["tuning"]["best_params"]["lr"])
    assert parent.info.status == "FINISHED"


def test_a_run_stopped_while_finishing_its_mlflow_run_is_finished_by_the_next(tmp_path, home, monkeypatch):
    from chrombench.engine.tracking import Tracker

    out = tmp_path / "out"
    cfg = config(out, [f"{TOY}:TinyLogistic"], trials=2, seeds=[0])

    def dies(*args, **kwargs):
        raise KeyboardInterrupt  # as if killed while the tuning plot was being logged

    with monkeypatch.context() as mp:
        mp.setattr(Tracker, "log_tuning_history", dies)
        with pytest.raises(KeyboardInterrupt):
            run_evaluations(cfg, progress=False)
    assert not results.summary_path(out, "simremc", "tiny-logistic", "E003").exists()
    run_evaluations(cfg, progress=False)
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name("chrombench/tasks/simremc").experiment_id
    parent = next(r for r in client.search_runs([exp]) if r.data.tags["chrombench.kind"] == "parent")
    assert parent.info.status == "FINISHED"
    assert "tuning" in [a.path for a in client.list_artifacts(parent.info.run_id)]
    assert results.summary_path(out, "simremc", "tiny-logistic", "E003").exists()


@pytest.mark.slow  # chrombench run in subprocesses
def test_local_workers_split_whole_pairs_and_change_no_number(tmp_path, home):
    """--workers 2 gives exactly the results of one worker, each pair done once, by either worker."""
    def cli(out, workers):
        cmd = [sys.executable, "-m", "chrombench", "run", "-m", f"{TOY}:TinyLogistic", "-m", f"{TOY}:AttentiveToy",
               "-t", "E003", "-t", "E112", "--genes", GENES_CLI, "--trials", "3", "--seeds", "0-1",
               "--output-dir", str(out), "--workers", str(workers), "--no-progress"]
        env = {**os.environ, "CHROMBENCH_HOME": str(home), "CHROMBENCH_TOY_SLEEP": "0.05"}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return {(r["model"]["name"], r["task"]["name"], r.get("seed")): r["metrics"]
                for r in results.read_records(out / "results")}

    one, two = cli(tmp_path / "one", 1), cli(tmp_path / "two", 2)
    assert len(one) == 2 * 2 * 3 and one == two
    log = (tmp_path / "two" / "logs" / "worker-1.log").read_text()
    assert "Traceback" not in log
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'two' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("chrombench/tasks/simremc").experiment_id],
                              max_results=500)
    parents = [r for r in runs if r.data.tags["chrombench.kind"] == "parent"]
    assert len(parents) == 4 and all(r.info.status == "FINISHED" for r in parents)
    workers = {r.data.tags["chrombench.worker"].split(":")[1] for r in runs if r.data.tags["chrombench.kind"] == "seed"}
    assert len(workers) == 2, "both workers took pairs"


@pytest.mark.slow  # chrombench run in subprocesses
def test_workers_with_another_budget_are_refused(tmp_path, home):
    """Two workers (two output folders, one storage) tuning the same study must share its budget."""
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    # the second worker must start (a new interpreter importing chrombench: seconds on a loaded machine) while
    # the first still tunes, else there is nothing to refuse: 8 trials of 1.5 s leave it about 12 s
    env = {**os.environ, "CHROMBENCH_TOY_SLEEP": "1.5", "CHROMBENCH_HOME": str(home), "CHROMBENCH_POLL_S": "0.2"}

    def cmd(trials: int, out: str) -> list[str]:
        return [sys.executable, "-m", "chrombench", "run", "-m", f"{TOY}:TinyLogistic", "-t", "E003", "--genes",
                GENES_CLI, "--trials", str(trials), "--seeds", "0", "--storage", storage, "--output-dir",
                str(tmp_path / out), "--no-progress", "--workers", "1"]

    first = subprocess.Popen(cmd(8, "a"), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any(t.state.name == "RUNNING" for t in _trials_or_none(storage)):
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        other = subprocess.run(cmd(3, "b"), env=env, capture_output=True, text=True, timeout=120)
    finally:
        first.wait(timeout=300)
    assert first.returncode == 0
    assert other.returncode != 0 and "start every worker with the same budget" in other.stdout + other.stderr, other.stdout[-3000:]


def _trials_or_none(storage: str) -> list:
    import optuna

    try:
        names = optuna.get_all_study_names(storage)
        return [t for n in names for t in optuna.load_study(study_name=n, storage=storage).get_trials()]
    except Exception:  # the schema is not there yet
        return []


def test_model_order_completes_columns_one_by_one_longest_pairs_first():
    """--order model (how the roadmap56 build fills a table): every pair of a model before the next
    model's, and within a model the development tasks (3 seeds) first, so the last pairs, which one
    worker may finish alone, are the short ones."""
    from chrombench.engine.plan import ModelSpec, Plan
    from chrombench.tasks import get_suite

    suite = get_suite("roadmap56")
    tasks = [("simremc", t) for t in suite.tasks]
    models = [ModelSpec("a", None, object), ModelSpec("b", None, object)]
    p = Plan(models=models, tasks=tasks, suite="roadmap56", genes=None, storage="", tracking_uri="",
             output_dir=Path("."), suite_spec=suite)
    by_model = [(task, spec.name) for _, task, spec in p.pair_order("model")]
    assert [m for _, m in by_model] == ["a"] * len(tasks) + ["b"] * len(tasks)
    first = [t for t, _ in by_model[:len(suite.dev_tasks)]]
    assert sorted(first) == sorted(suite.dev_tasks) and len(suite.dev_tasks) == 3
    assert sorted(by_model) == sorted((t, m.name) for _, t in tasks for m in models)  # each pair once
    by_task = [(task, spec.name) for _, task, spec in p.pair_order("task")]
    assert by_task[:2] == [(tasks[0][1], "a"), (tasks[0][1], "b")]  # the default is unchanged: row by row
    with pytest.raises(ValueError, match="'diagonal'"):
        p.pair_order("diagonal")


def test_cli_order_model_fits_one_model_after_the_other(tmp_path, home):
    load_task("E112", "simremc", genes=GENES)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["run", "-m", f"{TOY}:TinyLogistic", "-m", "logistic-regression", "-t", "E003",
                                    "-t", "E112", "--genes", GENES_CLI, "--trials", "0", "--seeds", "0",
                                    "--order", "model", "--workers", "1", "--output-dir", str(out),
                                    "--no-progress"])
    assert res.exit_code == 0, res.output
    # in the order their files were written (``created`` has whole seconds: two toy fits share one)
    seeds = sorted((r for r in results.read_records(out / "results") if r["kind"] == "seed"),
                   key=lambda r: Path(r["_path"]).stat().st_mtime_ns)
    assert [r["model"]["name"] for r in seeds] == ["tiny-logistic"] * 2 + ["logistic-regression"] * 2
    bad = CliRunner().invoke(main, ["run", "--order", "diagonal"])
    assert bad.exit_code == 2 and "'task', 'model'" in bad.output
