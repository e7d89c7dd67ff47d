"""MLflow tracking of runs: one experiment per (suite, dataset), a parent run per (model, task).

Layout in MLflow::

    experiment "chrombench/<suite>/<dataset>"
      run "<model> · <task>"          tags, tuning summary, best model, tuning-history plot,
        run "trial-<n>"               attention maps (when the model has ``attention(X)``)
        run "seed-<k>"                params, per-epoch valid_auroc/train_loss, final metrics,
                                      test predictions CSV

Everything goes through ``MlflowClient`` with explicit run ids (no global "active run"), so the
engine's bookkeeping never depends on MLflow's fluent state. The default store is a SQLite file in
the output folder with artifacts beside it; ``--tracking-uri`` points at a real server instead.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ChrombenchError

PARENT, TRIAL, SEED = "parent", "trial", "seed"
MAX_PARAM_LEN = 500  # MLflow stores up to 6000 chars; long values are summaries anyway


def _quiet() -> None:
    for name in ("mlflow", "alembic", "mlflow.store.db.utils"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow 3 reports usage to a remote endpoint from a background thread; a benchmark run (often
    # offline, on a cluster) should not. Users who want it set MLFLOW_DISABLE_TELEMETRY=false.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # against a server, MLflow prints two "View run ..." lines per finished run: hundreds per suite
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


def local_uri(output_dir: Path) -> str:
    return f"sqlite:///{(Path(output_dir).resolve() / 'mlflow.db').as_posix()}"


def artifact_root(output_dir: Path) -> str:
    return (Path(output_dir).resolve() / "mlartifacts").as_uri()


@contextmanager
def _fail_fast_http(timeout_s: int = 5):
    """No retries and a short timeout, for the reachability probe only (user settings win)."""
    keys = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_s)}
    saved = {k: os.environ.get(k) for k in keys}
    for k, v in keys.items():
        os.environ.setdefault(k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)


def probe_tracking(uri: str) -> None:
    """Fail fast, before any work, when ``--tracking-uri`` does not answer."""
    _quiet()
    from mlflow import MlflowClient

    try:
        with _fail_fast_http():
            MlflowClient(uri).search_experiments(max_results=1)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise ChrombenchError(f"cannot reach --tracking-uri {uri}: {first[:300]}") from exc


def ensure_store(uri: str) -> None:
    """Create a local SQLite tracking store once, under a file lock: two processes opening a new
    ``mlflow.db`` together both run its migrations and one dies ("duplicate column name"), which is
    what several workers started at once on one output folder do. Servers migrate their own store."""
    if not uri.startswith("sqlite:///"):
        return
    import fcntl

    _quiet()
    from mlflow import MlflowClient

    db = Path(uri[len("sqlite:///"):])
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{db}.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            if not db.exists():
                create_sqlite_atomically(db, lambda tmp: MlflowClient(tmp).search_experiments(max_results=1))
            try:
                MlflowClient(uri).search_experiments(max_results=1)
            except Exception as exc:
                raise ChrombenchError(f"{db} is not a usable MLflow store ({str(exc).splitlines()[0][:200]}); move it "
                                      "away (its runs are then gone from `chrombench ui`) and run again") from None
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def create_sqlite_atomically(db: Path, create) -> None:
    """Create a SQLite store under a temporary name beside ``db`` (``create(uri)`` makes and migrates it),
    then rename it into place: a process killed while the schema is half made (MLflow's migrations take
    seconds) leaves only the temporary file, which the next try removes, never a ``db`` that every rerun
    refuses ("table ... already exists"). Callers hold a lock beside ``db``."""
    tmp = db.with_name(f".{db.name}.creating")
    for leftover in (tmp, tmp.with_name(tmp.name + "-journal")):
        leftover.unlink(missing_ok=True)
    create(f"sqlite:///{tmp.as_posix()}")
    os.replace(tmp, db)  # connections still open on it keep working: they hold the file, not its name


class Tracker:
    """Find-or-create runs and log to them. One instance per experiment."""

    def __init__(self, uri: str, experiment: str, artifact_location: str | None = None):
        _quiet()
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        self.uri = uri
        self.client = MlflowClient(uri)
        exp = self.client.get_experiment_by_name(experiment)
        if exp is None:
            try:
                self.experiment_id = self.client.create_experiment(experiment, artifact_location=artifact_location)
            except MlflowException:  # another worker created it between our get and create
                self.experiment_id = self.client.get_experiment_by_name(experiment).experiment_id
        else:
            self.experiment_id = exp.experiment_id
        self.experiment = experiment

    # -- runs ----------------------------------------------------------------------------------------
    def find_run(self, tags: dict[str, str]) -> str | None:
        flt = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
        runs = self.client.search_runs([self.experiment_id], filter_string=flt, max_results=1,
                                       order_by=["attributes.start_time DESC"])
        return runs[0].info.run_id if runs else None

    def parent_run(self, study: str, name: str, tags: dict, reuse: bool = True) -> str:
        """The (model, task) run: the latest one is reused on resume (call under the study lock so
        that workers share it); ``reuse=False`` starts a new one (results recomputed from scratch)."""
        found = self.find_run({"chrombench.study": study, "chrombench.kind": PARENT}) if reuse else None
        if found:
            self.client.update_run(found, status="RUNNING")
            return found
        earlier = self.client.search_runs([self.experiment_id], filter_string=(
            f"tags.`chrombench.study` = '{study}' and tags.`chrombench.kind` = '{PARENT}'"), max_results=1000)
        run = self.client.create_run(self.experiment_id, run_name=name,
                                     tags={**_str_tags(tags), "chrombench.study": study, "chrombench.kind": PARENT})
        for r in earlier:  # recomputed from scratch (--overwrite-strategy always): say which run is current
            self.set_tags(r.info.run_id, {"chrombench.superseded_by": run.info.run_id})
        return run.info.run_id

    def child_run(self, parent_id: str, name: str, kind: str, tags: dict | None = None,
                  params: dict | None = None) -> str:
        run = self.client.create_run(self.experiment_id, run_name=name, tags={
            **_str_tags(tags or {}), "mlflow.parentRunId": parent_id, "chrombench.kind": kind})
        if params:
            self.log_params(run.info.run_id, params)
        return run.info.run_id

    def delete_earlier_attempts(self, parent_id: str, name: str, keep: str) -> None:
        """Delete (MLflow's soft delete) the other runs named ``name`` under ``parent_id``: attempts a
        killed process left behind, superseded by ``keep``, so each seed appears once."""
        runs = self.client.search_runs([self.experiment_id], filter_string=(
            f"tags.`mlflow.parentRunId` = '{parent_id}' and attributes.run_name = '{name}'"), max_results=100)
        for r in runs:
            if r.info.run_id != keep:
                self.client.delete_run(r.info.run_id)

    def end(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)

    def kill_orphans(self, parent_id: str, kind: str) -> None:
        """Mark KILLED the children of ``kind`` still RUNNING (call when none can be running any more)."""
        runs = self.client.search_runs([self.experiment_id], filter_string=(
            f"tags.`mlflow.parentRunId` = '{parent_id}' and tags.`chrombench.kind` = '{kind}' "
            "and attributes.status = 'RUNNING'"), max_results=1000)
        for r in runs:
            self.client.set_terminated(r.info.run_id, status="KILLED")

    def reconcile_trials(self, parent_id: str, trials: list[dict]) -> None:
        """Make trial runs agree with the Optuna study, which is the truth.

        A process killed between telling Optuna and finishing its MLflow run leaves a run RUNNING
        (or without state); once tuning is over, each ``trial-<n>`` run gets its trial's final state.
        """
        by_name = {f"trial-{t['number']}": t for t in trials}
        runs = self.client.search_runs([self.experiment_id], filter_string=(
            f"tags.`mlflow.parentRunId` = '{parent_id}' and tags.`chrombench.kind` = '{TRIAL}'"), max_results=5000)
        for r in runs:
            t = by_name.get(r.info.run_name)
            state = t["state"] if t else "FAIL"
            if r.data.tags.get("chrombench.state") == state and r.info.status != "RUNNING":
                continue
            self.set_tags(r.info.run_id, {"chrombench.state": state})
            if t and t["value"] is not None and "valid_auroc" not in r.data.metrics:
                self.log_metrics(r.info.run_id, {"valid_auroc": t["value"]}, step=10**6)
            self.end(r.info.run_id, "FINISHED" if state in ("COMPLETE", "PRUNED") else "KILLED")

    # -- values --------------------------------------------------------------------------------------
    def log_params(self, run_id: str, params: dict) -> None:
        from mlflow.entities import Param

        items = [Param(str(k), _param_str(v)) for k, v in sorted(params.items())]
        for i in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[i:i + 100])

    def log_metrics(self, run_id: str, metrics: dict, step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()
                 if v is not None and np.isfinite(float(v))]
        if items:
            self.client.log_batch(run_id, metrics=items)

    def log_history(self, run_id: str, history: list[tuple[int, dict]]) -> None:
        """Per-epoch metrics (valid_auroc, train_loss, ...) with step = epoch, in one batch."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, int(epoch)) for epoch, m in history for k, v in m.items()
                 if np.isfinite(float(v))]
        for i in range(0, len(items), 1000):
            self.client.log_batch(run_id, metrics=items[i:i + 1000])

    def set_tags(self, run_id: str, tags: dict) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in _str_tags(tags).items()])

    # -- artifacts -----------------------------------------------------------------------------------
    def log_dir(self, run_id: str, local_dir: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifacts(run_id, str(local_dir), artifact_path)

    def log_file(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), artifact_path)

    def log_model(self, run_id: str, model, artifact_path: str = "model") -> None:
        with tempfile.TemporaryDirectory() as tmp:
            model.save(Path(tmp) / artifact_path)
            self.log_dir(run_id, Path(tmp) / artifact_path, artifact_path)

    def log_tuning_history(self, run_id: str, trials: list[dict]) -> None:
        if not trials:
            return
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "tuning_history.png"
            plot_tuning_history(trials, path)
            csv = Path(tmp) / "tuning_history.csv"
            csv.write_text("trial,state,valid_auroc,duration_s,params\n" + "".join(
                f"{t['number']},{t['state']},{'' if t['value'] is None else t['value']},{t['duration_s']:.3f},"
                f"\"{json.dumps(t['params'], sort_keys=True).replace(chr(34), chr(39))}\"\n" for t in trials))
            self.log_dir(run_id, Path(tmp), "tuning")

    def log_attention(self, run_id: str, maps: "AttentionMaps") -> None:
        """``attention_by_class``'s means as CSV and PNG under ``attention/``."""
        with tempfile.TemporaryDirectory() as tmp:
            rows = ["class,mark,bin,mean_alpha"]
            brow = ["class,mark,mean_beta"]
            for cls, (a, b) in maps.means.items():
                rows += [f"{cls},{maps.marks[j]},{t + 1},{a[j, t]:.6g}" for j in range(a.shape[0])
                         for t in range(a.shape[1])]
                brow += [f"{cls},{maps.marks[j]},{b[j]:.6g}" for j in range(b.shape[0])]
            (Path(tmp) / "alpha_by_class.csv").write_text("\n".join(rows) + "\n")
            (Path(tmp) / "beta_by_class.csv").write_text("\n".join(brow) + "\n")
            plot_attention(maps.means, Path(tmp) / "attention.png", maps.marks)
            self.log_dir(run_id, Path(tmp), "attention")


@dataclass(frozen=True)
class AttentionMaps:
    """Mean alpha (mark x bin) and beta (mark) of a model over its ON and OFF test genes."""

    means: dict  # "ON"/"OFF" -> (alpha [marks, bins], beta [marks])
    marks: tuple


def attention_by_class(model, X: np.ndarray, y: np.ndarray) -> AttentionMaps | None:
    """The model's attention averaged over the ON and over the OFF genes of ``X`` (None for a model
    without ``attention``)."""
    from .. import MARKS
    from ..explain.methods import available_methods

    if "attention" not in available_methods(model):
        return None
    alpha, beta = model.attention(X)
    alpha, beta = np.asarray(alpha, np.float64), np.asarray(beta, np.float64)
    means = {}
    for label, cls in ((1, "ON"), (0, "OFF")):
        sel = np.asarray(y) == label
        if sel.any():
            means[cls] = (alpha[sel].mean(axis=0), beta[sel].mean(axis=0))
    marks = model.input_marks() if hasattr(model, "input_marks") else MARKS  # the task's mark names
    return AttentionMaps(means=means, marks=tuple(marks))


def _param_str(v) -> str:
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    return s if len(s) <= MAX_PARAM_LEN else s[:MAX_PARAM_LEN - 3] + "..."


def _str_tags(tags: dict) -> dict[str, str]:
    out = {}
    for k, v in tags.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        out[str(k)] = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
    return out


def plot_tuning_history(trials: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    done = [t for t in trials if t["value"] is not None]
    for state, marker, color in (("COMPLETE", "o", "tab:blue"), ("PRUNED", "x", "tab:gray")):
        pts = [t for t in done if t["state"] == state]
        if pts:
            ax.scatter([t["number"] for t in pts], [t["value"] for t in pts], marker=marker, color=color,
                       label=state.lower() + (" (last epoch)" if state == "PRUNED" else ""), zorder=3)
    complete = sorted((t for t in done if t["state"] == "COMPLETE"), key=lambda t: t["number"])
    if complete:
        best = np.maximum.accumulate([t["value"] for t in complete])
        ax.step([t["number"] for t in complete], best, where="post", color="tab:orange", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("valid AUROC")
    ax.set_title("Tuning history")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_attention(means: dict, path: Path, marks: tuple[str, ...] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .. import MARKS

    marks = marks or MARKS

    classes = list(means)
    fig, axes = plt.subplots(len(classes), 1, figsize=(9, 1.8 * len(classes) + 0.6), dpi=100, squeeze=False)
    vmax = max(float(a.max()) for a, _ in means.values())
    for ax, cls in zip(axes[:, 0], classes):
        a, b = means[cls]
        im = ax.imshow(a, aspect="auto", cmap="viridis", vmin=0, vmax=vmax)
        ax.set_yticks(range(len(marks)), [f"{m} (beta {b[j]:.2f})" for j, m in enumerate(marks)], fontsize=7)
        ax.set_title(f"mean bin attention alpha, {cls} test genes", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.02)
    axes[-1, 0].set_xlabel("bin (TSS at the centre)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
