"""Two `chrombench run` workers sharing one PostgreSQL storage split the work exactly once.

A throwaway PostgreSQL cluster is created with initdb and started on a free port (as the
``postgres`` user when running as root). Set CHROMBENCH_PG_URL to use an existing server instead
(e.g. the one .ci/services.sh starts). Skipped only when PostgreSQL is not installed.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest

from chrombench import results
from chrombench.data.load import load_task

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

TOY = str(Path(__file__).with_name("engine_toy_models.py"))
GENES = {"train": 200, "valid": 100, "test": 100}
TRIALS, SEEDS = 6, [0, 1, 2, 3]
MODELS = ("TinyLogistic", "AttentiveToy")


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pg_url():
    if os.environ.get("CHROMBENCH_PG_URL"):
        yield os.environ["CHROMBENCH_PG_URL"]
        return
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install -y postgresql, or run .ci/services.sh)")
    as_user: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as an unprivileged user")
        as_user = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="chrombench-pg-"))
    if as_user:
        shutil.chown(root, "postgres")
    data, port = root / "data", _free_port()
    run = lambda *cmd: subprocess.run([*as_user, *map(str, cmd)], check=True, capture_output=True, text=True)
    try:
        run(bindir / "initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
        run(bindir / "pg_ctl", "-D", data, "-l", root / "log", "-w", "-t", "60", "start",
            "-o", f"-p {port} -k {root} -h 127.0.0.1 -c fsync=off")
        run(bindir / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "chrombench")
        yield f"postgresql://postgres@127.0.0.1:{port}/chrombench"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def home(module_home):
    load_task("E003", "simremc", genes=GENES)
    return module_home


def test_two_workers_share_trials_and_seeds_exactly_once(pg_url, home, tmp_path):
    import optuna
    import sqlalchemy as sa

    from chrombench.engine.coordination import normalise_url

    outs = [tmp_path / "worker-a", tmp_path / "worker-b"]  # two machines: nothing local is shared
    env = {**os.environ, "CHROMBENCH_HOME": str(home), "CHROMBENCH_TOY_SLEEP": "0.1", "CHROMBENCH_POLL_S": "0.5"}
    procs = []
    for out in outs:
        cmd = [sys.executable, "-m", "chrombench", "run", "-t", "E003", "--genes", "200,100,100",
               "--trials", str(TRIALS), "--seeds", f"{SEEDS[0]}-{SEEDS[-1]}", "--storage", pg_url,
               "--output-dir", str(out), "--no-progress"]
        for m in MODELS:
            cmd += ["-m", f"{TOY}:{m}"]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for p in procs:
        output = p.communicate(timeout=300)[0]
        assert p.returncode == 0, output[-3000:]

    url = normalise_url(pg_url)
    studies = optuna.get_all_study_names(url)
    assert len(studies) == len(MODELS)
    trials_by_worker: Counter = Counter()
    for name in studies:
        trials = optuna.load_study(study_name=name, storage=url).get_trials()
        finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
        assert len(finished) == TRIALS, f"{name}: {len(finished)} finished trials, budget {TRIALS}"
        assert len({t.number for t in trials}) == len(trials) and not any(t.state.name == "RUNNING" for t in trials)
        trials_by_worker.update(t.user_attrs["worker"].rsplit(":", 2)[1] for t in finished)

    eng = sa.create_engine(url)
    with eng.connect() as conn:
        rows = conn.execute(sa.text("SELECT study, item, status, owner FROM chrombench_claims")).all()
    eng.dispose()
    assert sorted(Counter((r.study, r.item) for r in rows).values()) == [1] * len(MODELS) * len(SEEDS)
    assert all(r.status == "done" for r in rows)
    seeds_by_worker = Counter(r.owner.rsplit(":", 2)[1] for r in rows)

    # every worker ends with every record, and a record is the same document wherever it lies
    records = {}
    for out in outs:
        for rec in results.read_records(out / "results"):
            path = rec.pop("_path")
            assert not results.problems(rec), path
            key = (rec["kind"], rec["model"]["name"], rec.get("seed"))
            if rec["kind"] == "seed":
                assert records.setdefault(key, rec["digest"]) == rec["digest"], f"{key} computed twice"
            else:
                assert rec["tuning"]["n_trials"] + rec["tuning"]["n_pruned"] == TRIALS
    assert len([k for k in records if k[0] == "seed"]) == len(MODELS) * len(SEEDS)
    assert sum(trials_by_worker.values()) == TRIALS * len(MODELS)
    assert sum(seeds_by_worker.values()) == len(SEEDS) * len(MODELS)
    print(f"\ntrials per worker pid: {dict(trials_by_worker)}; seeds per worker pid: {dict(seeds_by_worker)}")


def _open_shared_storage(url: str, barrier, use_lock: bool) -> None:
    from chrombench.engine import tuning
    from chrombench.engine.coordination import Coordinator, schema_lock

    barrier.wait()  # everyone creates the schema at the same moment, as workers started together do
    if use_lock:
        with schema_lock(url):
            tuning.open_storage(url, 10, 60)
            Coordinator(url).dispose()
    else:
        tuning.open_storage(url, 10, 60)
        Coordinator(url).dispose()


def _race_fresh_database(pg_url: str, name: str, use_lock: bool, workers: int = 6) -> list[int]:
    import multiprocessing as mp

    import sqlalchemy as sa

    from chrombench.engine.coordination import normalise_url

    admin = sa.create_engine(normalise_url(pg_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    url = normalise_url(pg_url.rsplit("/", 1)[0] + "/" + name)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(workers)
    procs = [ctx.Process(target=_open_shared_storage, args=(url, barrier, use_lock)) for _ in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    return [p.exitcode for p in procs]


def test_workers_started_together_create_the_schema_once(pg_url):
    """Several workers opening a fresh database at once all get a working storage (no pg_type race)."""
    # without schema_lock, one such attempt failed 5 times out of 5 here (pg_type unique violation)
    codes = _race_fresh_database(pg_url, "chrombench_race", use_lock=True)
    assert codes == [0] * len(codes), f"exit codes {codes}"


@pytest.fixture()
def mlflow_server(tmp_path):
    """A real `mlflow server` process on a free port of 127.0.0.1 (sqlite backend, served artifacts)."""
    import urllib.request

    port, store = _free_port(), tmp_path / "mlflow-server"
    store.mkdir()
    log = open(store / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                             f"sqlite:///{store / 'mlflow.db'}", "--artifacts-destination", str(store / "artifacts"),
                             "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                log.flush()
                pytest.fail(f"mlflow server did not start: {(store / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _outcomes(out: Path) -> dict:
    """(model, task, seed) -> what a leaderboard shows of a seed record (not who computed it, or when)."""
    found = {}
    for rec in results.read_records(out / "results", kind="seed"):
        key = (rec["model"]["name"], rec["task"]["name"], rec["seed"])
        found[key] = (rec["metrics"], rec["training"], rec["model"]["params"], rec["dataset"]["content_hash"])
    return found


def test_cluster_workers_on_postgres_and_an_mlflow_server_give_one_workers_records(pg_url, home, tmp_path,
                                                                                    mlflow_server):
    """The roadmap56 recipe on one machine: two worker processes (two output folders, as on two nodes)
    share one PostgreSQL storage and one MLflow tracking server under the fixed-hyperparameter
    protocol (--trials 0). Every (model, task, seed) is computed exactly once, and the records are
    those a single worker computes alone."""
    import sqlalchemy as sa
    from mlflow.tracking import MlflowClient

    from chrombench.engine.coordination import normalise_url

    load_task("E112", "simremc", genes=GENES)
    base = [sys.executable, "-m", "chrombench", "run", "-t", "E003", "-t", "E112", "--genes", "200,100,100",
            "--trials", "0", "--seeds", "0-2", "--no-progress", "--workers", "1"]
    for m in MODELS:
        base += ["-m", f"{TOY}:{m}"]
    env = {**os.environ, "CHROMBENCH_HOME": str(home), "CHROMBENCH_TOY_SLEEP": "0.05", "CHROMBENCH_POLL_S": "0.5"}
    storage = pg_url.rsplit("/", 1)[0] + "/chrombench_cluster"
    admin = sa.create_engine(normalise_url(pg_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text("DROP DATABASE IF EXISTS chrombench_cluster"))
        conn.execute(sa.text("CREATE DATABASE chrombench_cluster"))
    admin.dispose()

    nodes = [tmp_path / "node-a", tmp_path / "node-b"]
    procs = [subprocess.Popen(base + ["--storage", storage, "--tracking-uri", mlflow_server, "--output-dir", str(out)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for out in nodes]
    for p in procs:
        output = p.communicate(timeout=300)[0]
        assert p.returncode == 0, output[-3000:]
    alone = tmp_path / "alone"
    single = subprocess.run(base + ["--output-dir", str(alone)], env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stdout[-3000:] + single.stderr[-3000:]

    expected = _outcomes(alone)
    assert len(expected) == len(MODELS) * 2 * 3
    for out in nodes:  # every node ends with every record, equal to the single worker's
        assert _outcomes(out) == expected, f"{out.name} differs from a single worker"

    eng = sa.create_engine(normalise_url(storage))
    with eng.connect() as conn:
        rows = conn.execute(sa.text("SELECT study, item, status, owner FROM chrombench_claims")).all()
    eng.dispose()
    assert len(rows) == len(expected) and all(r.status == "done" for r in rows)
    assert len({(r.study, r.item) for r in rows}) == len(rows)  # each (model, task, seed) claimed once

    client = MlflowClient(mlflow_server)
    seed_runs = Counter()
    for exp in client.search_experiments():
        for run in client.search_runs([exp.experiment_id], "tags.`chrombench.seed` != ''", max_results=1000):
            if run.info.status == "FINISHED":
                t = run.data.tags
                seed_runs[(t["chrombench.model"], t["chrombench.task"], int(t["chrombench.seed"]))] += 1
    assert seed_runs == Counter({k: 1 for k in expected}), "the tracking server must hold each seed run once"
