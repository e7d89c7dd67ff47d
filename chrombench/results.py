"""Result records: schema, digests, atomic writes, and the seed -> summary reduction.

A record is a plain JSON document (schema: ``chrombench/schemas/result.schema.json``):
one per (model, task, seed) with ``kind: "seed"`` and one per (model, task) with
``kind: "summary"``. Each carries the dataset's name, version and content hash, so simulated
and real results can never be confused, and a ``digest`` over its own canonical JSON, so a
record edited by hand after the run is detected.

Layout under an output directory::

    results/<dataset>/<model>/<task>/seed-<k>.json
    results/<dataset>/<model>/<task>/seed-<k>.predictions.csv   (bundles: .csv.gz)
    results/<dataset>/<model>/<task>/summary.json

The predictions file of a seed (its test genes' ``gene_id,probability,label``) is written and read
only here (``predictions_text``, ``write_predictions``, ``read_predictions``), so its name, columns
and number format have one definition.
"""

from __future__ import annotations

import csv
import datetime as _dt
import functools
import gzip
import hashlib
import io
import json
import os
import platform
import subprocess
from importlib import resources
from pathlib import Path

import numpy as np

from .atomic import atomic_write_text
from . import __version__

SCHEMA_VERSION = 1
# 1.1: every record says how its fits ended (``training``); epoch caps that converging fits do not
# reach; a zero-trial budget (fixed hyperparameters) for suites that hold them across tasks
PROTOCOL_VERSION = "chrombench-protocol-1.1"


@functools.lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(resources.files("chrombench").joinpath("schemas/result.schema.json").read_text())


def canonical(record: dict) -> bytes:
    # "_"-prefixed keys are annotations added on read (e.g. _path), never part of the record
    body = {k: v for k, v in record.items() if k != "digest" and not k.startswith("_")}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def compute_digest(record: dict) -> str:
    return "sha256:" + hashlib.sha256(canonical(record)).hexdigest()


def seal(record: dict) -> dict:
    """Fill in the header fields and the digest."""
    record = {"schema_version": SCHEMA_VERSION, "protocol_version": PROTOCOL_VERSION,
              "code_version": code_version(), "hardware": hardware(), "created": _now(), **record}
    record = _plain(record)
    record["digest"] = compute_digest(record)
    return record


def problems(record: dict) -> list[str]:
    """Schema violations and digest mismatch, as readable strings (empty = valid)."""
    import jsonschema

    try:
        bad = _non_finite(record)
    except RecursionError:
        return ["<root>: nested too deeply to check (a crafted or damaged record)"]
    if bad:  # NaN or Infinity parse from JSON but are no metric (and no canonical JSON)
        return [f"{bad}: not a finite number"]
    try:
        errs = [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
                for e in jsonschema.Draft202012Validator(schema()).iter_errors(record)]
        if not errs and record.get("digest") != compute_digest(record):
            errs.append("digest does not match the contents: the record was modified after it was written")
    except RecursionError:
        return ["<root>: nested too deeply to check (a crafted or damaged record)"]
    return errs


def _non_finite(obj, path: str = "", depth: int = 0) -> str | None:
    """The path of the first NaN/Infinity in ``obj`` (None when there is none)."""
    if depth > 200:
        raise RecursionError
    if isinstance(obj, float) and not np.isfinite(obj):
        return path or "<root>"
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        found = _non_finite(v, f"{path}/{k}" if path else str(k), depth + 1)
        if found:
            return found
    return None


def atomic_write_json(path: Path, obj: dict) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def record_dir(root: Path, dataset: str, model: str, task: str) -> Path:
    safe = model.replace("/", "_").replace(":", "_")
    return Path(root) / "results" / dataset / safe / task


def seed_path(root: Path, dataset: str, model: str, task: str, seed: int) -> Path:
    return record_dir(root, dataset, model, task) / f"seed-{seed}.json"


def summary_path(root: Path, dataset: str, model: str, task: str) -> Path:
    return record_dir(root, dataset, model, task) / "summary.json"


# -- predictions ----------------------------------------------------------------------------------------
# Bundles keep them gzipped (a full-size task's CSV is ~190 KB, ~80 KB gzipped; roadmap56 has 62 per model).
PREDICTION_COLUMNS = ("gene_id", "probability", "label")
PREDICTION_SUFFIXES = (".predictions.csv", ".predictions.csv.gz")


def predictions_name(seed: int | str, gz: bool = False) -> str:
    """``seed-<k>.predictions.csv`` (``.gz`` in bundles); ``seed="*"`` gives the glob of them."""
    return f"seed-{seed}{PREDICTION_SUFFIXES[1] if gz else PREDICTION_SUFFIXES[0]}"


def predictions_path(root: Path, dataset: str, model: str, task: str, seed: int) -> Path:
    return record_dir(root, dataset, model, task) / predictions_name(seed)


def find_predictions(record_path: str | Path | None, seed: int) -> Path | None:
    """The predictions file beside the seed record at ``record_path`` (a bundle's gzipped one first)."""
    if not record_path:
        return None
    for gz in (True, False):
        candidate = Path(record_path).with_name(predictions_name(seed, gz))
        if candidate.is_file():
            return candidate
    return None


def predictions_text(gene_ids, probability, label=None) -> str:
    """The file's text: a header, then one line per gene; no ``label`` column when ``label`` is None.

    A real CSV (gene IDs with commas or quotes are quoted). Probabilities as ``repr``: the shortest text
    that reads back as the same float, so a metric recomputed from the file (``leaderboard validate``)
    is exactly the record's; 8 digits made ties that moved an AUROC by 1e-5."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if label is None:
        writer.writerow(PREDICTION_COLUMNS[:2])
        writer.writerows([str(g), repr(float(p))] for g, p in zip(gene_ids, probability))
    else:
        writer.writerow(PREDICTION_COLUMNS)
        writer.writerows([str(g), repr(float(p)), int(y)] for g, p, y in zip(gene_ids, probability, label))
    return buf.getvalue()


def write_predictions(path: Path, gene_ids, probability, label=None) -> None:
    atomic_write_text(path, predictions_text(gene_ids, probability, label))


def predictions_table(path: str | Path) -> tuple[list[str], list[list[str]]]:
    """The header (names stripped) and the rows of a predictions file, gzipped when its name ends in
    ``.gz``. ``FileNotFoundError`` when there is none; ``ValueError`` naming the file when it is not
    UTF-8 text (a BOM is allowed) or gzip."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if path.name.endswith(".gz") else raw).decode("utf-8-sig")
    except FileNotFoundError:
        raise
    except (OSError, EOFError, UnicodeDecodeError) as exc:  # a damaged gzip stream is an OSError or EOFError
        raise ValueError(f"{path}: not a UTF-8 text (or gzip) file ({exc})") from None
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return ([h.strip() for h in rows[0]] if rows else []), rows[1:]


def read_predictions(path: str | Path, by_gene: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gene_ids, probability, label) of a predictions file, sorted by gene id (so seeds line up gene by
    gene) or, with ``by_gene=False``, in file order (row ``i`` is line ``i + 2``). ``ValueError`` names
    the file and the line that does not parse.

    Column indices and one pass over the rows: a render reads the roadmap56 bundles' ~11 million rows,
    and a DictReader per row took ~1.4x as long (benchmarks/bench_read_predictions.py). float() is
    kept: numpy's string casts are slower and are not the parser the records were checked with.
    """
    header, rows = predictions_table(path)
    if not header:
        raise ValueError(f"{path}: empty, expected a header {','.join(PREDICTION_COLUMNS)}")
    missing = [c for c in PREDICTION_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{path}: no column {', '.join(missing)} in the header {','.join(header)}")
    cols = [header.index(c) for c in PREDICTION_COLUMNS]
    gi, pi, li = cols
    try:
        ids = np.array([r[gi] for r in rows], dtype=str)
        prob = np.array([float(r[pi]) for r in rows], dtype=float)
        label = np.array([int(float(r[li])) for r in rows], dtype=int)
    except (IndexError, ValueError, OverflowError):  # find the line only now, so a good file is read in one pass
        raise ValueError(f"{path}: {_first_bad_row(rows, len(header), cols)}") from None
    from .data import seal  # an earlier seed's predictions hold the test labels of the task now fitted

    seal.check_gene_ids(ids, f"reading {path}")
    if not by_gene:
        return ids, prob, label
    order = np.argsort(ids, kind="stable")
    return ids[order], prob[order], label[order]


def _first_bad_row(rows: list[list[str]], width: int, cols: list[int]) -> str:
    for i, r in enumerate(rows):
        if len(r) <= max(cols):
            return f"line {i + 2} has {len(r)} fields, the header {width}"
        try:
            float(r[cols[1]]), int(float(r[cols[2]]))
        except (ValueError, OverflowError) as exc:
            return f"line {i + 2}: {exc}"
    return "a row does not parse"  # not reached: the caller's parse failed on one of these rows


def read_records(*roots: Path, kind: str | None = None) -> list[dict]:
    """All records under ``roots`` (recursively), each with ``_path`` set to its file."""
    out = []
    for root in roots:
        for p in sorted(Path(root).rglob("*.json")):
            try:
                rec = json.loads(p.read_text())
            except (OSError, ValueError, RecursionError):  # unreadable, not JSON, or nested too deeply
                continue
            if isinstance(rec, dict) and rec.get("kind") in ("seed", "summary") and "protocol_version" in rec:
                if kind is None or rec["kind"] == kind:
                    rec["_path"] = str(p)
                    out.append(rec)
    return out


def summarize(seed_records: list[dict], tuning: dict | None = None) -> dict:
    """Reduce the seed records of one (model, task) into a summary record (unsealed)."""
    if not seed_records:
        raise ValueError("no seed records to summarize")
    first = seed_records[0]
    recs = sorted(seed_records, key=lambda r: r["seed"])
    metrics = {}
    for split in sorted(recs[0]["metrics"]):  # sorted: the same summary from records in memory or read back
        for metric in sorted(recs[0]["metrics"][split]):
            vals = [float(r["metrics"][split][metric]) for r in recs]
            metrics[f"{split}_{metric}"] = {"mean": float(np.mean(vals)),
                                            "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
                                            "values": vals}
    out = {
        "kind": "summary", "model": first["model"], "task": first["task"], "dataset": first["dataset"],
        "seeds": [r["seed"] for r in recs], "metrics": metrics,
        "oracle_auroc": first.get("oracle_auroc"),
        "training": summarize_training([r.get("training") for r in recs]),
        "fit_time_s": float(np.mean([r.get("fit_time_s", 0.0) for r in recs])),
        "tuning": tuning if tuning is not None else first.get("tuning", {}),
    }
    if all(isinstance(r.get("compute"), dict) for r in recs):  # records before it was kept have none
        out["compute"] = [r["compute"] for r in recs]
    return out


def summarize_training(reports: list) -> dict:
    """The seeds' ``training`` blocks side by side; ``converged`` only when every seed converged
    (``None`` when some seed does not say)."""
    reports = [r if isinstance(r, dict) else {"stopped_by": "unknown", "converged": None} for r in reports]
    flags = [r.get("converged") for r in reports]
    out = {"stopped_by": [r.get("stopped_by", "unknown") for r in reports],
           "converged": None if any(f is None for f in flags) else all(flags),
           "n_unconverged": sum(f is False for f in flags)}
    for key in ("epochs_run", "best_epoch"):
        if all(key in r for r in reports):
            out[key] = [int(r[key]) for r in reports]
    for key in ("best_valid_auroc", "valid_floor"):  # kept only for fits the stall rule looked at
        if any(key in r for r in reports):
            out[key] = [r.get(key) for r in reports]
    return out


# A fit that early stopping ended with its best epoch among the first STALL_EPOCHS *and* below what a
# linear model gets on the same split never learned: it sat on a plateau from the start, near its
# initial weights. On the 1.1 roadmap56 table such LSTM fits lost to logistic regression by up to 0.09
# AUROC (E071: best epoch 0, valid 0.636 vs 0.728). A fit that is done that early but does clear the
# floor learned fast (DeepChrome on E071: best epoch 2, valid 0.726): it converged. The floor is the
# valid AUROC of a logistic regression on each gene's per-mark totals (``linear_floor``), less
# FLOOR_MARGIN, about two standard errors of an AUROC on a 6,601-gene split.
STALL_EPOCHS = 3
FLOOR_MARGIN = 0.01


def is_stalled_fit(stopped_by, best_epoch, best_valid_auroc=None, valid_floor=None) -> bool:
    """The rule, for one fit. Without a floor (records written before it was kept) an early best epoch
    alone decides."""
    if stopped_by == "stalled":
        return True
    if stopped_by != "patience" or not isinstance(best_epoch, int) or not 0 <= best_epoch < STALL_EPOCHS:
        return False
    if isinstance(valid_floor, (int, float)) and isinstance(best_valid_auroc, (int, float)):
        return best_valid_auroc < valid_floor - FLOOR_MARGIN
    return True


def stalled_seeds(training: dict) -> list[int]:
    """Positions (seed order; ``[0]`` for a seed record) of the fits in a ``training`` block that
    stalled (see ``is_stalled_fit``)."""
    if not isinstance(training, dict):
        return []
    stops = training.get("stopped_by")
    stops = stops if isinstance(stops, list) else [stops]

    def per_seed(key):
        value = training.get(key)
        return value if isinstance(value, list) else [value] * len(stops)

    rows = zip(stops, per_seed("best_epoch"), per_seed("best_valid_auroc"), per_seed("valid_floor"))
    return [k for k, row in enumerate(rows) if is_stalled_fit(*row)]


def is_stalled(record: dict) -> bool:
    return bool(stalled_seeds(record.get("training")))


def is_outside(record: dict) -> bool:
    """A record made from predictions outside the engine (``chrombench record``): no code travels with it,
    so it cannot be rebuilt."""
    origin = record.get("origin")
    return isinstance(origin, dict) and origin.get("engine") is False


def is_unconverged(record: dict) -> bool:
    """A seed or summary record with at least one fit that stopped while still improving, diverged, or
    stalled (ended by early stopping before it learned)."""
    training = record.get("training")
    return isinstance(training, dict) and (training.get("converged") is False or is_stalled(record))


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus the git commit when running from a checkout."""
    try:
        here = Path(__file__).resolve().parent
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        if sha:
            return f"{__version__}+g{sha}{'.dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        pass
    return __version__


@functools.lru_cache(maxsize=1)
def hardware() -> dict:
    info = {"platform": platform.platform(), "machine": platform.machine(), "python": platform.python_version(),
            "cpus": os.cpu_count()}
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    return info


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _plain(obj):
    """numpy scalars/arrays and tuples -> JSON types, so digests are stable."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj
