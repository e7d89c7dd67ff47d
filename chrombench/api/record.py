"""From a predictions file made outside the engine to the result record the engine writes.

``record_predictions`` (the call behind ``chrombench record``) reads a predictions file in the
engine's format (``gene_id,probability[,label]``, a header, one line per test gene; optional
``task`` and ``dataset`` columns are checked too), checks it against the task's test split line by
line, scores it with the leaderboard's metrics (``chrombench.evaluate``, through ``Evaluator``) and
writes, in the engine's layout::

    OUT/results/<dataset>/<model>/<task>/seed-<k>.json              the seed record (sealed: digest)
    OUT/results/<dataset>/<model>/<task>/seed-<k>.predictions.csv   the predictions, engine format
    OUT/results/<dataset>/<model>/<task>/summary.json               over the seeds recorded so far

so ``chrombench leaderboard bundle OUT/results`` takes them like a run's. Every record carries an
``origin`` block (``engine: false``): predictions from outside the engine, no code travels with them,
they cannot be rebuilt, and the test split was held out by convention (the block counts the reads of
``Task.read_test()`` under this ``$CHROMBENCH_HOME``). Everything is checked before anything is
written; a refusal writes nothing.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .. import results
from ..errors import ChrombenchError, PredictionsError
from .evaluator import Evaluator
from .task import Arrays, Task, count_test_reads, load_task

OUTSIDE_NOTE = ("predictions from outside the engine: no code travels with them, so they cannot be rebuilt; "
                "the test split was held out by convention")
REQUIRED_COLUMNS = results.PREDICTION_COLUMNS[:2]  # gene_id, probability
OPTIONAL_COLUMNS = ("label", "task", "dataset")  # checked against the split and the task when present


@dataclass(frozen=True)
class Predictions:
    """A predictions file checked against one split, in the split's gene order."""

    path: Path
    probability: np.ndarray  # float64, aligned with the split's gene_ids


def read_predictions_file(path: str | os.PathLike, split: Arrays, *, split_name: str, task: str, dataset: str
                          ) -> Predictions:
    """Parse ``path`` and check it against ``split``: each problem is a ``PredictionsError`` naming the
    file and the line (or the first missing and the first extra gene ID)."""
    path = Path(path)
    where = f"{dataset}/{task}'s {split_name} split"
    try:
        header, rows = results.predictions_table(path)
    except FileNotFoundError:
        raise PredictionsError(f"{path}: no such file") from None
    except ValueError as exc:
        raise PredictionsError(str(exc)) from None
    if not header:
        raise PredictionsError(f"{path}: empty; expected a header gene_id,probability[,label] and one line per gene")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise PredictionsError(f"{path}: line 1: no column {', '.join(missing)} in the header {','.join(header)} "
                               "(expected gene_id,probability[,label], as the engine writes)")
    col = {c: header.index(c) for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in header}
    index = {g: i for i, g in enumerate(split.gene_ids.tolist())}
    prob = np.full(len(split), np.nan)
    seen: dict[str, int] = {}
    first_extra = None
    for lineno, row in enumerate(rows, start=2):
        if not row:
            continue  # a blank line
        if len(row) != len(header):
            raise PredictionsError(f"{path}: line {lineno} has {len(row)} fields, the header {len(header)}")
        gene = row[col["gene_id"]].strip()
        if not gene:
            raise PredictionsError(f"{path}: line {lineno}: empty gene_id")
        if gene in seen:
            raise PredictionsError(f"{path}: line {lineno}: gene {gene!r} again (first on line {seen[gene]}); "
                                   "one prediction per gene")
        seen[gene] = lineno
        value = row[col["probability"]].strip()
        try:
            p = float(value)
        except ValueError:
            raise PredictionsError(f"{path}: line {lineno}: probability {value!r} of gene {gene!r} is not a "
                                   "number") from None
        if not math.isfinite(p) or not 0.0 <= p <= 1.0:
            raise PredictionsError(f"{path}: line {lineno}: probability {value} of gene {gene!r} is not a "
                                   "probability in [0, 1]" + (" (apply a sigmoid to logits)" if math.isfinite(p) else ""))
        for column, expected in (("task", task), ("dataset", dataset)):
            if column in col and row[col[column]].strip() != expected:
                raise PredictionsError(f"{path}: line {lineno}: {column} {row[col[column]].strip()!r}, but the "
                                       f"predictions are being recorded for {dataset}/{task}")
        i = index.get(gene)
        if i is None:
            first_extra = first_extra or (gene, lineno)
            continue
        if "label" in col:
            label = row[col["label"]].strip()
            if label not in ("0", "1", "0.0", "1.0"):
                raise PredictionsError(f"{path}: line {lineno}: label {label!r} of gene {gene!r} is not 0 or 1")
            if int(float(label)) != int(split.y[i]):
                raise PredictionsError(f"{path}: line {lineno}: gene {gene!r} has label {int(float(label))} here but "
                                       f"{int(split.y[i])} in {where}: the file is for another task or dataset")
        prob[i] = p
    absent = [g for g in split.gene_ids.tolist() if g not in seen]
    if absent or first_extra:
        parts = []
        if absent:
            parts.append(f"{len(absent)} gene(s) of the split missing, first {absent[0]!r}")
        if first_extra:
            n_extra = sum(g not in index for g in seen)
            parts.append(f"{n_extra} gene(s) not in the split, first {first_extra[0]!r} (line {first_extra[1]})")
        raise PredictionsError(f"{path}: the gene IDs do not match {where} ({len(split)} genes): {'; '.join(parts)}"
                               " (a file for another task, dataset or suite, or for another split?)")
    if not seen:
        raise PredictionsError(f"{path}: a header but no predictions")
    return Predictions(path=path, probability=prob)


def write_predictions(path: str | os.PathLike, gene_ids, probability) -> Path:
    """Write your loop's test predictions as ``gene_id,probability`` (the input of ``chrombench record``)."""
    ids, p = np.asarray(gene_ids).astype(str), np.asarray(probability, dtype=np.float64).reshape(-1)
    if len(ids) != len(p):
        raise PredictionsError(f"{len(ids)} gene IDs but {len(p)} probabilities")
    results.write_predictions(Path(path), ids, p)
    return Path(path)


def record_predictions(predictions: str | os.PathLike, task: str | Task, *, seed: int, model_name: str,
                       suite: str | None = None, data: str | None = None,
                       valid_predictions: str | os.PathLike | None = None, out_dir: str | os.PathLike = "chrombench-out",
                       params: Mapping[str, Any] | None = None, n_parameters: int = 0, family: str = "custom",
                       fit_time_s: float = 0.0, overwrite: bool = False) -> Path:
    """Score ``predictions`` (test genes) for ``task`` and write the engine's result record; returns its path.

    ``task``: a ``Task`` from ``load_task`` or a name (then ``suite`` and ``data`` as for ``load_task``).
    ``valid_predictions``: the same for the valid genes, recorded as the valid metrics (optional).
    ``params``, ``n_parameters``, ``family``, ``fit_time_s``: what the record says about your model.
    A seed already recorded under ``out_dir`` is replaced only with ``overwrite``.
    """
    from ..models.registry import MODELS, canonical
    from ..safepath import identifier

    identifier(model_name, "model name")
    if canonical(model_name) in MODELS:  # a row of yours must not pass itself off as the zoo's
        raise ChrombenchError(f"model name {model_name!r} is a zoo model's; name your model something else")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ChrombenchError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(task, Task):
        if (suite is not None and suite != task.suite) or (data is not None and data != task.dataset.name):
            raise ChrombenchError(f"suite/data {suite}/{data} differ from the loaded task's {task.suite}/{task.dataset.name}")
    else:
        task = load_task(task, suite=suite, data=data)
    ds = task.dataset
    fresh = task._load()  # the test labels to score with: the recorder's read, not the user's (not journaled)
    if fresh.dataset.content_hash != ds.content_hash:
        raise ChrombenchError(f"{ds.name}/{task.name} changed on disk since it was loaded; load it again")
    test = _arrays_of(fresh.test)
    checked = read_predictions_file(predictions, test, split_name="test", task=task.name, dataset=ds.name)
    evaluator = Evaluator(task.name)
    metrics = {"test": evaluator.eval({"y_true": test.y, "y_pred": checked.probability})}
    if valid_predictions is not None:
        v = read_predictions_file(valid_predictions, task.valid, split_name="valid", task=task.name, dataset=ds.name)
        metrics["valid"] = evaluator.eval({"y_true": task.valid.y, "y_pred": v.probability})
    folder = results.record_dir(Path(out_dir), ds.name, model_name, task.name)
    seed_file = results.seed_path(Path(out_dir), ds.name, model_name, task.name, seed)
    engine = [p for p in folder.glob("seed-*.json") if not results.is_outside(_read(p))]
    if engine:
        raise ChrombenchError(f"{folder} holds results of the engine for a model named {model_name!r}; choose "
                              "another --model-name or --out")
    if seed_file.exists() and not overwrite:
        raise ChrombenchError(f"{seed_file} exists; pass --overwrite to replace seed {seed}")
    csv_text = results.predictions_text(test.gene_ids, checked.probability, test.y)
    record = results.seal({
        "kind": "seed",
        "model": {"name": model_name, "family": family, "params": results._plain(dict(params or {})),
                  "n_parameters": int(n_parameters)},
        "task": {"name": task.name, "suite": task.suite, "genes": task.genes},
        "dataset": ds.as_dict(), "seed": seed, "metrics": metrics,
        "oracle_auroc": task.metadata.get("oracle_auroc"),
        "training": {"stopped_by": "unknown", "converged": None},
        "fit_time_s": float(fit_time_s),
        "tuning": {"n_trials": 0, "n_pruned": 0, "elapsed_s": 0.0, "best_params": results._plain(dict(params or {})),
                   "sampler": "none (outside the engine)"},
        "origin": {"kind": "predictions", "engine": False, "note": OUTSIDE_NOTE,
                   "source_file": Path(predictions).name,
                   "predictions_sha256": "sha256:" + hashlib.sha256(csv_text.encode()).hexdigest(),
                   "test_reads": count_test_reads(ds.content_hash)},
    })
    errs = results.problems(record)
    if errs:
        raise ChrombenchError(f"internal error: the record violates the schema: {'; '.join(errs)}")
    others = [r for r in (_read(p) for p in folder.glob("seed-*.json") if p != seed_file)
              if r.get("dataset", {}).get("content_hash") == ds.content_hash]
    mixed = [r for r in others if ("valid" in r.get("metrics", {})) != ("valid" in metrics)]
    if mixed:
        raise ChrombenchError(f"seed {mixed[0].get('seed')} in {folder} was recorded "
                              f"{'without' if 'valid' in metrics else 'with'} valid predictions; record every seed "
                              "of a task the same way (with or without --valid)")
    summary = _summary([record, *others])
    results.atomic_write_text(folder / results.predictions_name(seed), csv_text)
    results.atomic_write_json(seed_file, record)
    results.atomic_write_json(folder / "summary.json", summary)
    return seed_file


def _summary(seed_records: list[dict]) -> dict:
    first = min(seed_records, key=lambda r: r["seed"])
    body = results.summarize(seed_records, first["tuning"])
    body["model"] = first["model"]
    body["origin"] = {k: first["origin"][k] for k in ("kind", "engine", "note")}
    body["origin"]["test_reads"] = [r["origin"].get("test_reads") for r in sorted(seed_records, key=lambda r: r["seed"])]
    return results.seal(body)


def _arrays_of(split) -> Arrays:
    return Arrays(X=split.X, y=np.asarray(split.y, dtype=np.int8), gene_ids=np.asarray(split.gene_ids).astype(str))


def _read(path: Path) -> dict:
    import json

    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}
