"""``chrombench submit``: run the full protocol on a third-party model and write a leaderboard bundle.

The bundle (``leaderboards/submissions/NAME/``) holds everything ``chrombench leaderboard
validate`` checks and ``render`` shows:

    bundle.json          manifest: suite, dataset, protocol version, seeds, record digests, their digest
    model_card.json      description, parameter count, search space, tuning budget, versions, hardware
    MODEL_CARD.md        the same for people
    records/<task>/      seed-<k>.json and summary.json (and predictions CSVs when the engine wrote them)

This is the only leaderboard module that runs the engine (and so imports models and torch).
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import time
from pathlib import Path

from .. import __version__, results
from ..data.layout import dataset_spec
from ..errors import ChrombenchError
from .collect import OUTSIDE_ENGINE
from .validate import BUNDLE_FORMAT, MANIFEST, RECORDS_DIR, _sha256, records_digest

SUBMISSIONS = Path("leaderboards/submissions")
NAME_RE = re.compile(r"\A[A-Za-z][A-Za-z0-9_.-]{0,63}\Z")  # \Z, not $: no trailing newline


# -- the search space, recorded without running a study ------------------------------------------------

class RecordingTrial:
    """Stands in for an Optuna trial and records each ``suggest_*`` call as an Optuna distribution.

    It answers with the lowest value (the first choice for categoricals), so conditional spaces
    are recorded along that branch only; the model card says so.
    """

    number = 0

    def __init__(self):
        self.distributions: dict = {}
        self.params: dict = {}
        self.user_attrs: dict = {}

    def _record(self, name, dist):
        from optuna.distributions import _get_single_value

        self.distributions[name] = dist
        if dist.single():
            value = _get_single_value(dist)
        elif hasattr(dist, "choices"):
            value = dist.choices[0]
        else:
            value = dist.low
        self.params[name] = value
        return value

    def suggest_float(self, name, low, high, *, step=None, log=False):
        from optuna.distributions import FloatDistribution

        return self._record(name, FloatDistribution(low, high, log=log, step=step))

    def suggest_int(self, name, low, high, *, step=1, log=False):
        from optuna.distributions import IntDistribution

        return self._record(name, IntDistribution(low, high, log=log, step=step))

    def suggest_categorical(self, name, choices):
        from optuna.distributions import CategoricalDistribution

        return self._record(name, CategoricalDistribution(tuple(choices)))

    def report(self, value, step):  # a search space may be written against a live trial
        pass

    def should_prune(self) -> bool:
        return False

    def set_user_attr(self, key, value):
        self.user_attrs[key] = value


def search_space_of(model_cls: type) -> dict:
    """``{param: {"name": "FloatDistribution", "attributes": {...}}}`` (Optuna's JSON form)."""
    from optuna.distributions import distribution_to_json

    trial = RecordingTrial()
    model_cls.search_space(trial)
    return {k: json.loads(distribution_to_json(d)) for k, d in trial.distributions.items()}


# -- model card --------------------------------------------------------------------------------------------

def model_card(model_cls: type | None, target: str, name: str, records: list[dict], suite: str, wall_time_s: float,
               trials: int | None, timeout: float | None) -> dict:
    """``model_cls`` None: predictions from outside the engine (``chrombench record``), no class, no code."""
    summaries = [r for r in records if r["kind"] == "summary"]
    seeds = [r for r in records if r["kind"] == "seed"]
    first = summaries[0] if summaries else records[0]
    doc = (model_cls.__doc__ or "").strip() if model_cls else OUTSIDE_ENGINE
    tuning = {r["task"]["name"]: r.get("tuning", {}) for r in summaries}
    return {
        "name": name, "target": target, "class": model_cls.__qualname__ if model_cls else "(none: outside the engine)",
        "family": getattr(model_cls, "family", "") or first["model"].get("family", ""),
        "description": doc or getattr(model_cls, "description", "") or "(no docstring)",
        "n_parameters": {r["task"]["name"]: r["model"]["n_parameters"] for r in summaries},
        "search_space": search_space_of(model_cls) if model_cls else {},
        "search_space_note": "recorded by calling search_space on a recording trial; in a conditional space "
                             "only the branch of the lowest values is listed" if model_cls else
                             "none: the model was trained outside the engine",
        "tuning_budget": {"trials": trials, "timeout_s": timeout,
                          "spent": {t: {k: v.get(k) for k in ("n_trials", "n_pruned", "elapsed_s", "budget_trials",
                                                              "budget_timeout_s")} for t, v in tuning.items()}},
        "best_params": {t: v.get("best_params", {}) for t, v in tuning.items()},
        "suite": suite, "seeds": sorted({r["seed"] for r in seeds}),
        "dataset": {"name": first["dataset"]["name"], "version": first["dataset"]["version"],
                    "simulated": first["dataset"]["simulated"],
                    "content_hashes": {r["task"]["name"]: r["dataset"]["content_hash"] for r in summaries}},
        "protocol_version": first["protocol_version"], "code_version": first["code_version"],
        "hardware": first["hardware"], "wall_time_s": round(wall_time_s, 1),
        "test_auroc": {r["task"]["name"]: r["metrics"]["test_auroc"]["mean"] for r in summaries
                       if "test_auroc" in r["metrics"]},
    }


def model_card_markdown(card: dict) -> str:
    lines = [f"# Model card: {card['name']}", "", card["description"], "",
             f"- target: `{card['target']}` (class {card['class']}), family: {card['family'] or '—'}",
             f"- suite: {card['suite']}, seeds: {card['seeds']}",
             f"- dataset: {card['dataset']['name']} {card['dataset']['version']}"
             + (" (simulated: not real results)" if card["dataset"]["simulated"] else ""),
             f"- protocol: {card['protocol_version']}, code: {card['code_version']}",
             f"- hardware: {card['hardware'].get('platform', '?')}, {card['hardware'].get('cpus', '?')} CPUs, "
             f"GPU: {card['hardware'].get('cuda') or 'none'}",
             f"- wall time: {card['wall_time_s']} s; tuning budget: "
             f"trials={card['tuning_budget']['trials'] or 'default'}, "
             f"timeout={card['tuning_budget']['timeout_s'] or 'none'}", "",
             "## Test AUROC (mean over seeds) and parameters", "",
             "| task | test AUROC | parameters | trials (pruned) |",
             "|:---|---:|---:|---:|"]
    for task, auc in card["test_auroc"].items():
        spent = card["tuning_budget"]["spent"].get(task, {})
        lines.append(f"| {task} | {auc:.4f} | {card['n_parameters'].get(task, 0):,} | "
                     f"{spent.get('n_trials', '—')} ({spent.get('n_pruned', '—')}) |")
    lines += ["", "## Search space", "", "| parameter | distribution |", "|:---|:---|"]
    for param, d in card["search_space"].items():
        attrs = ", ".join(f"{k}={v}" for k, v in d["attributes"].items())
        lines.append(f"| {param} | {d['name']}({attrs}) |")
    lines += ["", f"_{card['search_space_note']}._", ""]
    return "\n".join(lines)


# -- the bundle ---------------------------------------------------------------------------------------------

def _gzip_copy(src: Path, dst: Path) -> None:
    """``src`` gzipped into ``dst`` byte-reproducibly (no name, mtime 0): the same predictions give the
    same file, so a rebuilt bundle changes nothing in git."""
    import gzip

    data = Path(src).read_bytes() if not str(src).endswith(".gz") else gzip.decompress(Path(src).read_bytes())
    with open(dst, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(data)


def write_bundle(bundle_dir: Path, name: str, target: str, suite: str, records: list[dict], card: dict,
                 command: str, overwrite: bool = False, smoke_test: bool = False) -> Path:
    """Write records, model card and manifest into ``bundle_dir`` atomically (stage, then rename)."""
    from ..atomic import staging_dir
    from ..safepath import identifier, remove_tree, replace_dir, under

    bundle_dir = under(Path(bundle_dir).parent, identifier(Path(bundle_dir).name, "bundle name"), kind="bundle name")
    identifier(name, "model name")
    if (bundle_dir.exists() or bundle_dir.is_symlink()) and not overwrite:
        raise ChrombenchError(f"{bundle_dir} exists; pass --overwrite to replace the bundle")
    stage = staging_dir(bundle_dir)
    try:
        listed, predictions = {}, {}
        for rec in records:
            sealed = {k: v for k, v in rec.items() if k != "_path"}  # copied as the run sealed it
            if sealed["model"]["name"] != name:
                # a zoo model submitted under another name: the leaderboard shows the chosen name
                body = {k: v for k, v in sealed.items() if k != "digest"}
                sealed = results.seal({**body, "model": {**body["model"], "name": name, "target": target}})
            task = identifier(sealed["task"]["name"], "task name in a record")
            fname = f"seed-{sealed['seed']}.json" if sealed["kind"] == "seed" else "summary.json"
            rel = f"{RECORDS_DIR}/{task}/{fname}"
            results.atomic_write_json(stage / rel, sealed)
            listed[rel] = sealed["digest"]
            preds = results.find_predictions(rec.get("_path"), rec["seed"]) if rec["kind"] == "seed" else None
            if preds is not None:
                prel = f"{RECORDS_DIR}/{task}/{results.predictions_name(sealed['seed'], gz=True)}"
                _gzip_copy(preds, stage / prel)
                predictions[prel] = _sha256(stage / prel)
        first = records[0]
        manifest = {
            "bundle_format": BUNDLE_FORMAT, "name": name, "target": target, "suite": suite,
            "dataset": {k: first["dataset"][k] for k in ("name", "version", "simulated")},
            "protocol_version": results.PROTOCOL_VERSION,
            "seeds": sorted({r["seed"] for r in records if r["kind"] == "seed"}),
            "tasks": sorted({r["task"]["name"] for r in records}),
            "records": dict(sorted(listed.items())), "records_digest": records_digest(listed.values()),
            "predictions": dict(sorted(predictions.items())),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "chrombench_version": __version__, "code_version": results.code_version(), "command": command,
        }
        if any(results.is_outside(r) for r in records):  # marked on the page too, from the records themselves
            manifest["outside_engine"] = OUTSIDE_ENGINE
        if suite is None:  # the bundle's own tasks: the subsample they were measured on, for the hash check
            manifest["genes"] = first["task"].get("genes")
        if smoke_test:  # unconverged fits are then warnings, and the page says it is no result
            manifest["smoke_test"] = True
        per_task: dict[str, set] = {}
        for r in records:
            if r["kind"] == "seed":
                per_task.setdefault(r["task"]["name"], set()).add(r["seed"])
        manifest["n_seeds"] = min((len(v) for v in per_task.values()), default=0)  # every task has at least these
        results.atomic_write_json(stage / "model_card.json", card)
        (stage / "MODEL_CARD.md").write_text(model_card_markdown(card))
        results.atomic_write_json(stage / MANIFEST, manifest)
        stage.chmod(0o755)  # a staging folder is private
        replace_dir(stage, bundle_dir, bundle_dir.parent)
    except BaseException:
        remove_tree(stage, bundle_dir.parent)
        raise
    return bundle_dir


def submit(target: str, name: str, *, suite: str = "quick", dataset: str = "simremc", trials: int | None = None,
           timeout: float | None = None, seeds=None, out_root: Path = SUBMISSIONS, work_dir: Path | None = None,
           device: str = "auto", overwrite: bool = False, progress: bool = True, command: str | None = None) -> Path:
    """Run the protocol for ``target`` on every task of ``suite`` and write ``out_root/name``.

    The engine's output goes to ``work_dir`` (default ``chrombench-out/submissions/NAME``), so an
    interrupted submission resumes where it stopped when run again.
    """
    from ..engine.run import RunConfig, run_evaluations
    from ..models.registry import get_model_class
    from ..tasks import get_suite

    if not NAME_RE.match(name):
        raise ChrombenchError(f"submission name {name!r} must start with a letter and use only letters, digits, "
                              "'_', '.', '-'")
    bundle_dir = Path(out_root) / name
    if bundle_dir.exists() and not overwrite:
        raise ChrombenchError(f"{bundle_dir} exists; pass --overwrite to replace the bundle")
    spec = get_suite(suite)
    needed = max(len(spec.seeds_for(t)) for t in spec.tasks)
    if seeds is not None:
        seeds = sorted(set(int(s) for s in seeds))
        if len(seeds) < needed:
            raise ChrombenchError(f"a {suite} submission needs at least {needed} seeds (got {seeds}); the leaderboard "
                                  "rejects fewer (leave --seeds out for the suite's own seeds)")
    suite_tasks = set(spec.tasks)
    model_cls = get_model_class(target)  # fails early, with did-you-mean, before any work
    work_dir = Path(work_dir) if work_dir else Path("chrombench-out") / "submissions" / name
    # NAME=TARGET makes the engine write the records under the submission's name, so they are
    # copied into the bundle exactly as sealed by the run (a zoo name cannot be renamed that way)
    model_ref = f"{name}={target}" if ":" in target else target
    cfg = RunConfig(models=[model_ref], tasks=None, suite=suite, dataset=dataset, trials=trials, timeout=timeout,
                    seeds=seeds, storage=None, tracking_uri=None, output_dir=work_dir,
                    overwrite_strategy="only-missing", device=device)
    start = time.perf_counter()
    summaries = run_evaluations(cfg, progress=progress)
    wall = time.perf_counter() - start
    if not summaries:
        raise ChrombenchError(f"the run produced no results for {target}")
    summaries = [r for r in summaries if r["task"]["name"] in suite_tasks]
    model_name, ds = summaries[0]["model"]["name"], summaries[0]["dataset"]
    # the seed records of this run; the work dir may also hold other seeds from earlier attempts
    records = summaries + [r for r in results.read_records(work_dir / "results", kind="seed")
                           if r["model"]["name"] == model_name and r["task"]["name"] in suite_tasks
                           and (r["dataset"]["name"], r["dataset"]["version"]) == (ds["name"], ds["version"])
                           and r["seed"] in (seeds if seeds is not None else spec.seeds_for(r["task"]["name"]))]
    card = model_card(model_cls, target, name, records, suite, wall, trials, timeout)
    command = command or (f"chrombench submit {target} --name {name} --suite {suite}"
                          + (f" --seeds {','.join(map(str, seeds))}" if seeds else ""))
    return write_bundle(bundle_dir, name, target, suite, records, card, command, overwrite=overwrite)


# -- bundles from an existing run ----------------------------------------------------------------------------

def bundle_results(results_dir: Path, suite: str | None, out_root: Path, *, models: list[str] | None = None,
                   overwrite: bool = False, command: str | None = None, smoke_test: bool = False) -> list[Path]:
    """One bundle per model found in ``results_dir`` (a `chrombench run` output) for ``suite``: the
    records as the run sealed them, no rerun. Models without every task of the suite are reported."""
    from ..models.registry import get_model_class
    from ..tasks import get_suite

    all_recs = results.read_records(Path(results_dir))
    if suite == "auto":  # the one suite (or the explicit tasks) the run covered
        present = sorted({r["task"].get("suite") or "" for r in all_recs})
        if len(present) > 1:
            raise ChrombenchError(f"records of several suites under {results_dir} "
                                  f"({', '.join(p or 'explicit tasks' for p in present)}): choose one with --suite")
        suite = (present[0] or None) if present else None
    if suite is not None:
        spec = get_suite(suite)
        recs = [r for r in all_recs if r["task"].get("suite") == suite and r["task"]["name"] in spec.tasks]
        tasks_of = lambda mine: set(spec.tasks)  # noqa: E731
    else:  # a run over explicit tasks (-t): the bundle covers the tasks the run covered
        recs = [r for r in all_recs if r["task"].get("suite") is None]
        tasks_of = lambda mine: {r["task"]["name"] for r in mine}  # noqa: E731
    where = f"{suite}-suite" if suite else "explicit-task (-t)"
    if not recs:
        raise ChrombenchError(f"no {where} records under {results_dir}: nothing to bundle"
                              + (f" ({len(all_recs)} records of other suites there)" if all_recs else ""))
    datasets = {(r["dataset"]["name"], r["dataset"]["version"]) for r in recs}
    if len(datasets) > 1:
        raise ChrombenchError(f"{where} records of {len(datasets)} datasets under {results_dir} "
                              f"({', '.join(' '.join(d) for d in sorted(datasets))}): bundle each run's output folder")
    by_model: dict[str, list[dict]] = {}
    for r in recs:
        by_model.setdefault(r["model"]["name"], []).append(r)
    wanted = models or sorted(by_model)
    missing = [m for m in wanted if m not in by_model]
    if missing:
        raise ChrombenchError(f"no {where} records of {', '.join(missing)} under {results_dir}")
    written = []
    from ..safepath import identifier

    for name in wanted:
        identifier(name, "model name in the records")  # it becomes the bundle's folder: OUT/<model>
        mine = by_model[name]
        have = {r["task"]["name"] for r in mine if r["kind"] == "summary"}
        if have != tasks_of(mine):
            raise ChrombenchError(f"{name}: no summary for {', '.join(sorted(tasks_of(mine) - have))} under "
                                  f"{results_dir}; run `chrombench run -m {name} --suite {suite}` first")
        summaries = [r for r in mine if r["kind"] == "summary"]
        _check_seed_policy(name, suite, summaries)  # at once, not after writing a bundle validate rejects
        seeds = sorted({s for r in summaries for s in r["seeds"]})
        records = summaries + [r for r in mine if r["kind"] == "seed" and r["seed"] in seeds]
        target = summaries[0]["model"].get("target") or name
        outside = {results.is_outside(r) for r in records}
        if outside == {True, False}:
            raise ChrombenchError(f"{name}: records of the engine and predictions from outside it under {results_dir}; "
                                  "record your own model under another name")
        model_cls = None if outside == {True} else get_model_class(target)  # outside the engine: no code
        # compute time from the records themselves: tuning plus every seed's fit
        spent = sum(r["tuning"].get("elapsed_s", 0.0) for r in summaries) + sum(
            r.get("fit_time_s", 0.0) for r in records if r["kind"] == "seed")
        card = model_card(model_cls, target, name, records, suite, spent, None, None)
        card["wall_time_note"] = "compute seconds from the records (tuning plus seed fits), not a wall-clock time"
        how = f"--suite {suite}" if suite else " ".join(f"-t {t}" for t in sorted(tasks_of(mine)))
        data = dataset_spec(*next(iter(datasets)))
        how += f" --data {data}" if data != "simremc" else ""
        made = f"chrombench record ... --model-name {name} ({OUTSIDE_ENGINE})" if model_cls is None \
            else f"chrombench run -m {name} {how}"
        written.append(write_bundle(Path(out_root) / name, name, target, suite, records, card,
                                    command or made, overwrite=overwrite,
                                    smoke_test=smoke_test))
    return written


def _check_seed_policy(name: str, suite: str | None, summaries: list[dict]) -> None:
    """Each task's seeds must be as many as the protocol asks (quick and explicit tasks: 3; roadmap56: 1,
    and 3 on its development tasks); say so before anything is written."""
    from ..tasks import get_suite
    from .validate import MIN_SEEDS

    spec = get_suite(suite) if suite else None
    for summ in summaries:
        task = summ["task"]["name"]
        # validate's rule (_check_coverage)
        need = MIN_SEEDS if spec is None else (len(spec.seeds_for(task)) if spec.dev_tasks
                                               else max(MIN_SEEDS, len(spec.seeds)))
        have = sorted(set(summ.get("seeds", [])))
        if len(have) < need:
            seeds = ",".join(map(str, range(need)))
            raise ChrombenchError(
                f"{name} on {task} has {len(have)} seed{'s' if len(have) != 1 else ''} {have}; the "
                f"{suite or 'explicit-task'} protocol needs {need} per task: run it again with --seeds {seeds} "
                "(finished seeds are kept), then bundle")
