"""Check leaderboard bundles before they are accepted: every rejection names a file and a reason.

A bundle is a folder with a manifest ``bundle.json`` and result records under ``records/<task>/``
(written by ``chrombench submit``). It is rejected when

- a record violates the schema, or its digest does not match its contents (edited by hand);
- a record or the manifest was made under another protocol version;
- the records on disk differ from the manifest's list (a record added, removed or replaced);
- a task of the suite is missing, or the seeds are too few (under the suite's policy: 3 per task on
  quick, 1 per task and 3 on the development tasks on roadmap56; or under the manifest's declared
  ``n_seeds``) or differ between tasks (of the same kind), or a (model, task, seed) appears twice;
- a record's dataset content hash differs from the hash the dataset registry computes for that
  task (the results were measured on other data);
- a summary does not follow from its seed records (recomputed), a seed's test AUROC does not follow
  from its predictions CSV (recomputed), or a predictions CSV differs from the manifest's sha256;
- a result record lies under the validated folder but outside any bundle (it would be rendered
  without ever being checked);
- a name is not an identifier; a predictions file lacks a test gene, repeats one, holds another gene or
  a label that is not the test split's (the split the record's dataset hash names); on simulated
  data, a test AUROC lies above the task's ceiling (``trust``: recomputed from the registry);
- a fit is unconverged (stopped at its epoch cap or time limit while still improving, diverged, or stalled:
  early stopping ended it before it learned, see results.is_stalled_fit),
  unless the manifest declares the bundle a smoke test (``"smoke_test": true``: warnings only).

The digests stop edits by hand and mistakes; they are not signatures (anyone can reseal a record
with the public code), which is why numbers are recomputed from the layer below them wherever the
bundle holds that layer.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .. import results
from ..data.layout import record_dataset_spec
from ..errors import ChrombenchError
from . import trust
from .pages import check_page, find_pages

MANIFEST = "bundle.json"
RECORDS_DIR = "records"
BUNDLE_FORMAT = 2  # 2: predictions CSVs are listed in the manifest with their sha256
MIN_SEEDS = 3
MANIFEST_FIELDS = ("bundle_format", "name", "suite", "dataset", "protocol_version", "seeds", "records",
                   "records_digest", "predictions")
AUROC_TOLERANCE = 1e-9  # predictions are written exactly (repr), so only float summation differs

HashLookup = Callable[[str, str, "dict | None"], tuple[str, str]]


@dataclass(frozen=True)
class Rejection:
    file: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"


@dataclass
class BundleReport:
    path: Path
    name: str | None = None
    n_records: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    warnings: list[Rejection] = field(default_factory=list)  # reported, not rejected (a smoke test's)

    @property
    def ok(self) -> bool:
        return not self.rejections


def records_digest(digests) -> str:
    """The manifest's digest over the *set* of record digests (order does not matter)."""
    return "sha256:" + hashlib.sha256("\n".join(sorted(digests)).encode()).hexdigest()


@functools.lru_cache(maxsize=None)
def _registry_hash(task: str, dataset: str, genes_key: tuple | None, home: str, entry_hash: str | None
                   ) -> tuple[str, str]:  # home and entry_hash: a re-import or another CHROMBENCH_HOME is new data
    from ..data.load import load_task

    data = load_task(task, dataset, genes=dict(genes_key) if genes_key else None)
    return data.dataset.version, data.dataset.content_hash


def registry_hash(task: str, dataset: str, genes: dict | None) -> tuple[str, str]:
    """(version, content hash) of a task as the dataset registry has it now, ``genes`` subsampled.

    For simremc this regenerates the task deterministically (cached on disk by the data layer and in
    memory here), so the check costs a few seconds once per task.
    """
    from ..data.catalog import read_registry
    from ..home import home

    entry = read_registry()["datasets"].get(dataset) or {}
    return _registry_hash(task, dataset, tuple(sorted(genes.items())) if genes else None, str(home()),
                          entry.get("content_hash"))


def find_bundles(path: Path) -> list[Path]:
    path = Path(path)
    if (path / MANIFEST).is_file():
        return [path]
    return sorted(p.parent for p in path.rglob(MANIFEST)) if path.is_dir() else []


def validate_paths(paths, lookup: HashLookup = registry_hash, pages: bool = True) -> list[BundleReport]:
    """Every bundle under ``paths``, and (``pages``) every rendered page there, re-rendered and compared.

    Each bundle is validated once, with ``lookup``: re-rendering a page reuses the reports of the bundles
    it is made from instead of validating them again (with the registry's own lookup)."""
    reports, validated = [], {}

    def validate(bundle: Path) -> BundleReport:
        key = Path(bundle).resolve()
        if key not in validated:
            validated[key] = validate_bundle(bundle, lookup)
        return validated[key]

    for p in paths:
        bundles = find_bundles(Path(p))
        page_dirs = find_pages(Path(p)) if pages else []
        if not bundles and not page_dirs:
            raise ChrombenchError(f"{p}: no bundle found (a folder with {MANIFEST}, written by `chrombench submit`)")
        bundle_reports = [validate(b) for b in bundles]
        for d in page_dirs:
            report = BundleReport(path=d, name="(rendered page)")
            report.rejections += [Rejection(f, why) for f, why in check_page(d, validate=validate)]
            reports.append(report)
        reports += bundle_reports
        loose = loose_records(Path(p), bundles)
        if loose:
            report = BundleReport(path=Path(p), name="(records outside any bundle)")
            report.rejections += [Rejection(str(f), "a result record outside any bundle: it would be rendered "
                                                    "unchecked; bundle it with `chrombench submit` or remove it")
                                  for f in loose]
            reports.append(report)
    return reports


def loose_records(root: Path, bundles: list[Path]) -> list[Path]:
    """Result-record files under ``root`` that no bundle in ``bundles`` contains."""
    inside = [b.resolve() for b in bundles]
    out = []
    for f in sorted(root.rglob("*.json")) if root.is_dir() else []:
        if f.name == MANIFEST or any(b in f.resolve().parents for b in inside):
            continue
        if any(part.startswith(".") for part in f.relative_to(root).parts[:-1]):
            continue  # a bundle being written (write_bundle stages in ".NAME.xxxx"): never rendered either
        try:
            doc = json.loads(f.read_text())
        except (OSError, ValueError, RecursionError):
            continue
        if isinstance(doc, dict) and doc.get("kind") in ("seed", "summary") and "metrics" in doc:
            out.append(f)
    return out


def validate_bundle(path: Path, lookup: HashLookup = registry_hash) -> BundleReport:
    path = Path(path)
    report = BundleReport(path=path)
    reject = lambda file, reason: report.rejections.append(Rejection(str(file), reason))  # noqa: E731
    manifest_file = path / MANIFEST
    try:
        manifest = json.loads(manifest_file.read_text())
    except (OSError, ValueError, RecursionError) as exc:
        reject(manifest_file, f"cannot read the manifest: {exc}")
        return report
    missing = [f for f in MANIFEST_FIELDS if f not in manifest]
    if missing:
        reject(manifest_file, f"manifest lacks {', '.join(missing)}")
        return report
    report.name = manifest["name"]
    if manifest["protocol_version"] != results.PROTOCOL_VERSION:
        reject(manifest_file, f"protocol version {manifest['protocol_version']!r}; this chrombench accepts "
                              f"{results.PROTOCOL_VERSION!r}")

    if manifest["bundle_format"] != BUNDLE_FORMAT:
        reject(manifest_file, f"bundle format {manifest['bundle_format']!r}; this chrombench reads format "
                              f"{BUNDLE_FORMAT}: make the bundle again with this version")
        return report
    records = _check_records(path, manifest, reject)
    report.n_records = len(records)
    _check_manifest(path, manifest, records, reject)
    _check_coverage(path, manifest, records, reject)
    _check_summaries(path, records, reject)
    _check_predictions(path, manifest, records, reject)
    _check_dataset_hashes(path, manifest, records, lookup, reject)
    trust.check_names(path, manifest, records, reject)
    trust.check_prediction_rows(path, manifest, records, reject)
    trust.check_ceiling(path, manifest, records, reject)
    report.warnings += _check_convergence(path, manifest, records, reject)
    return report


# -- the checks ---------------------------------------------------------------------------------------------

def suite_of(manifest: dict):
    """The suite a bundle answers to: a registered one by name, or (``"suite": null``) the bundle's own
    task list, as a run over explicit tasks (an imported dataset, say) leaves it: 3 seeds per task."""
    from ..tasks import Suite, get_suite

    if manifest.get("suite") is not None:
        return get_suite(manifest["suite"])
    tasks = manifest.get("tasks")
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) for t in tasks):
        raise ChrombenchError("the manifest has no suite and no list of tasks")
    genes = manifest.get("genes")
    return Suite(name="(its own tasks)", description="", tasks=tuple(tasks), genes=genes if isinstance(genes, dict) else None)


def _check_records(path: Path, manifest: dict, reject) -> dict[str, dict]:
    """Parse every record file; schema, digest, protocol and identity checks. rel path -> record."""
    records = {}
    for f in sorted((path / RECORDS_DIR).rglob("*.json")):
        rel = f.relative_to(path).as_posix()
        try:
            rec = json.loads(f.read_text())
        except (OSError, ValueError, RecursionError) as exc:
            reject(f, f"not valid JSON: {exc}")
            records[rel] = {}  # present (so not also reported as removed), but nothing in it to check
            continue
        if not isinstance(rec, dict):
            reject(f, "not a result record (a JSON object is expected)")
            continue
        records[rel] = rec
        errs = results.problems(rec)
        for e in errs:
            reject(f, e if e.startswith("digest") else f"schema violation: {e}")
        if errs:
            continue
        if rec["protocol_version"] != results.PROTOCOL_VERSION:
            reject(f, f"protocol version {rec['protocol_version']!r}; expected {results.PROTOCOL_VERSION!r}")
        if rec["model"]["name"] != manifest["name"]:
            reject(f, f"model {rec['model']['name']!r}, but the bundle is {manifest['name']!r}")
        ds = manifest["dataset"]
        if (rec["dataset"]["name"], rec["dataset"]["version"]) != (ds.get("name"), ds.get("version")):
            reject(f, f"dataset {rec['dataset']['name']} {rec['dataset']['version']}, but the bundle declares "
                      f"{ds.get('name')} {ds.get('version')}")
    return records


def _check_manifest(path: Path, manifest: dict, records: dict[str, dict], reject) -> None:
    """The files on disk must be exactly the manifest's list, with the same digests."""
    listed: dict = manifest["records"] if isinstance(manifest["records"], dict) else {}
    for rel in sorted(set(records) - set(listed)):
        reject(path / rel, "not listed in bundle.json: a record was added after the bundle was made")
    for rel in sorted(set(listed) - set(records)):
        reject(path / rel, "listed in bundle.json but missing: a record was removed after the bundle was made")
    for rel in sorted(set(listed) & set(records)):
        if records[rel].get("digest") != listed[rel]:
            reject(path / rel, "digest differs from the one in bundle.json: the record was replaced")
    if records_digest(listed.values()) != manifest["records_digest"]:
        reject(path / MANIFEST, "records_digest does not match the manifest's list of records: records were "
                                "added to or removed from bundle.json by hand")


def _check_coverage(path: Path, manifest: dict, records: dict[str, dict], reject) -> None:
    """Every task of the suite, each with the same seeds, at least MIN_SEEDS or the declared count."""
    try:
        suite = suite_of(manifest)
    except ChrombenchError as exc:
        reject(path / MANIFEST, str(exc))
        return
    seeds_by_task: dict[str, list[int]] = {}
    summaries: dict[str, tuple[str, dict]] = {}
    for rel, rec in records.items():
        task = rec.get("task", {}).get("name") if isinstance(rec.get("task"), dict) else None
        if rec.get("kind") == "seed" and isinstance(rec.get("seed"), int):
            seeds_by_task.setdefault(task, []).append(rec["seed"])
        elif rec.get("kind") == "summary":
            summaries[task] = (rel, rec)
    for task in suite.tasks:
        if task not in seeds_by_task and task not in summaries:
            reject(path / RECORDS_DIR / task, f"task {task} of suite {suite.name!r} is missing")
        elif task not in summaries:
            reject(path / RECORDS_DIR / task, f"task {task} has seed records but no summary record")
    for task in sorted(set(seeds_by_task) | set(summaries)):
        if task not in suite.tasks:
            reject(path / RECORDS_DIR / str(task), f"task {task} is not part of suite {suite.name!r}")
    declared = manifest.get("n_seeds")
    # each task needs the seeds its suite's protocol asks for (quick: 3; roadmap56: 1, 3 on its dev
    # tasks); a bundle may promise more (and is then held to it), never fewer
    declared = declared if isinstance(declared, int) else 0
    expected = sorted(manifest["seeds"]) if isinstance(manifest["seeds"], list) else None
    group_seeds: dict[bool, tuple[str, list[int]]] = {}  # dev task? -> (first task, its seeds)
    for task in suite.tasks:
        got = sorted(seeds_by_task.get(task, []))
        if task not in seeds_by_task:
            continue
        where = path / RECORDS_DIR / task
        policy = len(suite.seeds_for(task)) if suite.dev_tasks else max(MIN_SEEDS, len(suite.seeds))
        required = max(policy, declared)
        if len(set(got)) != len(got):
            reject(where, f"duplicate seed records {got}: a (model, task, seed) appears twice")
        dev = task in suite.dev_tasks
        if len(set(got)) < required:
            reject(where, f"{len(set(got))} seeds {got}; at least {required} are required"
                          + (" (declared n_seeds)" if declared > policy else f" on {suite.name}"
                             + (" development tasks" if dev else "")))
        elif not suite.dev_tasks and expected is not None and sorted(set(got)) != expected:
            reject(where, f"seeds {got} differ from the bundle's seeds {expected}: every task must use the same seeds")
        elif dev in group_seeds and sorted(set(got)) != group_seeds[dev][1]:
            first, seeds = group_seeds[dev]
            reject(where, f"seeds {got} differ from {first}'s {seeds}: every {'development ' if dev else ''}task "
                          "must use the same seeds")
        group_seeds.setdefault(dev, (task, sorted(set(got))))
        if task in summaries:
            rel, summ = summaries[task]
            if sorted(summ.get("seeds", [])) != sorted(set(got)):
                reject(path / rel, f"summary lists seeds {sorted(summ.get('seeds', []))} but the seed records "
                                   f"are {sorted(set(got))}")


def _check_dataset_hashes(path: Path, manifest: dict, records: dict[str, dict], lookup: HashLookup,
                          reject) -> None:
    """Each record's dataset hash must equal the registry's hash of that task (same genes)."""
    try:
        genes = suite_of(manifest).genes
    except ChrombenchError:
        return  # already reported by the coverage check
    for rel, rec in sorted(records.items()):
        ds, task = rec.get("dataset"), rec.get("task")
        if not (isinstance(ds, dict) and isinstance(task, dict) and "content_hash" in ds and "name" in task):
            continue  # a schema violation, reported already
        try:
            version, expected = lookup(task["name"], record_dataset_spec(ds), genes)
        except ChrombenchError as exc:
            reject(path / rel, f"cannot check the dataset hash of {ds.get('name')}/{task['name']}: {exc}")
            continue
        if ds.get("version") != version:
            reject(path / rel, f"dataset {ds.get('name')} version {ds.get('version')!r}; the registry has {version!r}")
        elif ds["content_hash"] != expected:
            reject(path / rel, f"dataset content hash {ds['content_hash'][:12]}... does not match the registry's "
                               f"{expected[:12]}... for {ds.get('name')}/{task['name']}: the results were measured "
                               "on other data")


def _check_summaries(path: Path, records: dict[str, dict], reject) -> None:
    """A summary's numbers must be what its seed records give (a resealed summary is still caught)."""
    by_task: dict[str, list[dict]] = {}
    summaries, broken = {}, set()
    for rel, rec in records.items():
        if results.problems(rec):
            if isinstance(rec.get("task"), dict):
                broken.add(rec["task"].get("name"))  # reported already; its summary cannot be recomputed
            continue
        task = rec["task"]["name"]
        if rec["kind"] == "seed":
            by_task.setdefault(task, []).append(rec)
        else:
            summaries[task] = (rel, rec)
    for task, (rel, summ) in sorted(summaries.items()):
        seeds = by_task.get(task)
        if not seeds or task in broken:
            continue  # reported by the coverage or record checks
        expected = results.summarize(seeds)["metrics"]
        for key, exp in expected.items():
            got = summ["metrics"].get(key, {})
            if not all(abs(float(got.get(k, float("nan"))) - exp[k]) <= 1e-9 for k in ("mean", "std")) or \
                    [round(float(v), 12) for v in got.get("values", [])] != [round(v, 12) for v in exp["values"]]:
                reject(path / rel, f"summary {key} (mean {got.get('mean')}) does not follow from the seed records "
                                   f"(mean {exp['mean']:.6g}): the summary was changed after the run")
                break


def _check_predictions(path: Path, manifest: dict, records: dict[str, dict], reject) -> None:
    """Predictions CSVs: exactly the manifest's list with the same sha256, and each seed's test AUROC
    recomputed from its CSV must equal the record's."""
    from ..evaluate import Evaluator

    listed = manifest["predictions"] if isinstance(manifest["predictions"], dict) else {}
    on_disk = {f.relative_to(path).as_posix(): f for suffix in results.PREDICTION_SUFFIXES
               for f in (path / RECORDS_DIR).rglob(f"*{suffix}")}
    for rel in sorted(set(on_disk) - set(listed)):
        reject(path / rel, "not listed in bundle.json: a predictions file was added after the bundle was made")
    for rel in sorted(set(listed) - set(on_disk)):
        reject(path / rel, "listed in bundle.json but missing: a predictions file was removed")
    root = path.resolve()
    for rel, f in list(on_disk.items()):  # a link could point anywhere: only the bundle's own files count
        if f.is_symlink() or root not in f.resolve().parents:
            reject(path / rel, "a symlink or a file outside the bundle: predictions must be plain files inside it")
            del on_disk[rel]
    for rel in sorted(set(listed) & set(on_disk)):
        if _sha256(on_disk[rel]) != listed[rel]:
            reject(path / rel, "sha256 differs from the one in bundle.json: the predictions were edited")
    for rel, rec in sorted(records.items()):
        if rec.get("kind") != "seed" or results.problems(rec):
            continue
        names = [f"{rel.rsplit('/', 1)[0]}/{results.predictions_name(rec['seed'], gz)}" for gz in (True, False)]
        csv_rel = next((n for n in names if n in on_disk), names[1])
        if csv_rel not in on_disk:
            reject(path / rel, f"no {csv_rel.rsplit('/', 1)[1]} beside it: a seed's test predictions are part of "
                               "the bundle")
            continue
        try:
            _, prob, label = results.read_predictions(on_disk[csv_rel])
            recomputed = Evaluator().eval(label, prob)
        except (ValueError, OSError) as exc:
            reject(path / csv_rel, f"cannot be read as gene_id,probability,label: {exc}")
            continue
        # every reported test metric, not only AUROC: a resealed record can change any of them
        for metric, value in sorted(recomputed.items()):
            claimed = rec["metrics"]["test"].get(metric)
            if claimed is None:
                continue
            if abs(value - claimed) > AUROC_TOLERANCE:
                name = "AUROC" if metric == "auroc" else metric.upper() if metric == "auprc" else metric
                reject(path / rel, f"test {name} {claimed:.6f} does not follow from {csv_rel.rsplit('/', 1)[1]} "
                                   f"({value:.6f}): the record or its predictions were changed")


def _check_convergence(path: Path, manifest: dict, records: dict[str, dict], reject) -> list[Rejection]:
    """A fit that stopped at its cap (or time limit) while still improving, or diverged, is no result.

    A bundle that declares itself a smoke test (``"smoke_test": true``) gets warnings instead; the
    leaderboard never ranks its rows as results either way (they are marked)."""
    smoke = manifest.get("smoke_test") is True
    warnings = []
    for rel, rec in sorted(records.items()):
        if rec.get("kind") != "seed" or results.problems(rec) or not results.is_unconverged(rec):
            continue
        t = rec["training"]
        ran = f" after {t['epochs_run']} epochs" if "epochs_run" in t else ""
        who = f"{rec['model']['name']} on {rec['task']['name']} seed {rec['seed']}"
        if results.is_stalled(rec):
            floor = (f", valid AUROC {t['best_valid_auroc']:.4f} below the linear floor {t['valid_floor']:.4f}"
                     if isinstance(t.get("valid_floor"), float) and isinstance(t.get("best_valid_auroc"), float) else "")
            why = (f"{who} stalled: early stopping ended it{ran} with its best epoch at {t.get('best_epoch')}{floor} "
                   f"(rule: a best epoch before {results.STALL_EPOCHS} under a linear model's valid AUROC less "
                   f"{results.FLOOR_MARGIN} means the fit never learned; recorded as {t['stopped_by']!r}); fix the "
                   "training recipe and run it again")
        else:
            cap = f" (cap {t['cap']}, best epoch {t.get('best_epoch')})" if "cap" in t else ""
            why = (f"{who} is unconverged: stopped by {t['stopped_by']}{ran}{cap} while still improving; raise its "
                   "epoch cap or time limit and run it again")
        if smoke:
            warnings.append(Rejection(str(path / rel), why + " (smoke test: warning only)"))
        else:
            reject(path / rel, why)
    return warnings


def _sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
