"""Bundle checks that recompute a claim from what validation trusts, not from what the bundle says.

A bundle's digests can be resealed by anyone with the public code, and its predictions files say
what their author wrote. What validation trusts is the dataset registry: the test split that the
record's dataset hash names (its gene IDs and labels) and, on simulated data, the task's ceiling
(the simulator's oracle AUROC). Each check below is one small function with the signature of
``validate``'s checks (``path, manifest, records, reject``) so checks can be added independently:

- ``check_names``: model, bundle and task names are identifiers (safe in a path and on a page);
- ``check_prediction_rows``: every predictions file holds each test gene exactly once, no other
  gene, and the split's own label for each (dropped genes, duplicated rows, edited labels);
- ``check_ceiling``: on simulated data, no test AUROC above the task's oracle AUROC plus
  ``CEILING_MARGIN`` (probabilities pushed toward the labels).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..data.layout import record_dataset_spec
from ..errors import ChrombenchError

# How far above the simulator's oracle AUROC a test AUROC may lie before it is refused. The oracle
# ranks genes by the latent activity behind the labels, which no model sees, so a model exceeds it
# only by chance on a finite test set: at the quick suite's 2000 test genes the standard error of an
# AUROC near 0.8 is about 0.01 (Hanley & McNeil), and a real fit sits well below the oracle anyway.
CEILING_MARGIN = 0.01


@dataclass(frozen=True)
class TrustedSplit:
    """The test split of a task as the registry has it now: what predictions are checked against."""

    version: str
    content_hash: str
    labels: dict  # gene_id -> label
    oracle_auroc: float | None  # simulated tasks only: the ceiling


SplitLookup = Callable[[str, str, "dict | None"], TrustedSplit]


@functools.lru_cache(maxsize=64)
def _registry_split(task: str, dataset: str, genes_key: tuple | None, home: str, entry_hash: str | None
                    ) -> TrustedSplit:  # home and entry_hash: a re-import or another CHROMBENCH_HOME is new data
    from ..data.load import load_task

    data = load_task(task, dataset, genes=dict(genes_key) if genes_key else None)
    labels = dict(zip(np.asarray(data.test.gene_ids).astype(str).tolist(), np.asarray(data.test.y).tolist()))
    oracle = data.truth.oracle_auroc if data.truth is not None else None
    return TrustedSplit(data.dataset.version, data.dataset.content_hash, labels, oracle)


def registry_split(task: str, dataset: str, genes: dict | None) -> TrustedSplit:
    from ..data.catalog import read_registry
    from ..home import home

    entry = read_registry()["datasets"].get(dataset) or {}
    return _registry_split(task, dataset, tuple(sorted(genes.items())) if genes else None, str(home()),
                           entry.get("content_hash"))


# -- names -------------------------------------------------------------------------------------------------

def check_names(path: Path, manifest: dict, records: dict[str, dict], reject) -> None:
    """Names reach paths and pages: each must be an identifier (``safepath.identifier``)."""
    from ..safepath import identifier

    def bad(value, kind: str):
        try:
            identifier(value, kind)
        except ChrombenchError as exc:
            return str(exc)
        return None

    why = bad(manifest.get("name"), "bundle name")
    if why:
        reject(path / "bundle.json", why)
    for rel, rec in sorted(records.items()):
        model, task = rec.get("model"), rec.get("task")
        for value, kind in ((model.get("name") if isinstance(model, dict) else None, "model name"),
                            (task.get("name") if isinstance(task, dict) else None, "task name")):
            why = bad(value, kind)
            if why:
                reject(path / rel, why)


# -- predictions against the trusted split -------------------------------------------------------------------

def _trusted(rec: dict, manifest: dict, splits: SplitLookup) -> TrustedSplit | None:
    """The registry's split for this record, when the record claims that very data (else the hash check
    of ``validate`` already says it was measured on other data)."""
    from .validate import suite_of

    try:
        genes = suite_of(manifest).genes
        trusted = splits(rec["task"]["name"], record_dataset_spec(rec["dataset"]), genes)
    except (ChrombenchError, KeyError, TypeError):
        return None
    return trusted if trusted.content_hash == rec["dataset"].get("content_hash") else None


def _seed_records(records: dict[str, dict]):
    from .. import results

    for rel, rec in sorted(records.items()):
        if rec.get("kind") == "seed" and not results.problems(rec):
            yield rel, rec


def check_prediction_rows(path: Path, manifest: dict, records: dict[str, dict], reject,
                          splits: SplitLookup = registry_split) -> None:
    """Each test gene once, no other gene, the split's own label: compared with the registry's split."""
    from .. import results

    for rel, rec in _seed_records(records):
        f = results.find_predictions(path / rel, rec["seed"])
        f = None if f is None or f.is_symlink() else f  # reported by validate's predictions check
        trusted = _trusted(rec, manifest, splits) if f else None
        if trusted is None:
            continue
        try:
            ids, _, labels = results.read_predictions(f, by_gene=False)
        except (ValueError, OSError) as exc:
            reject(f, f"cannot be checked against the test split: {exc}")
            continue
        problem = _first_row_problem(ids.tolist(), labels.tolist(), trusted,
                                     f"{rec['dataset']['name']}/{rec['task']['name']}")
        if problem:
            reject(f, problem)


def _first_row_problem(genes: list[str], labels: list[int], trusted: TrustedSplit, where: str) -> str | None:
    seen: dict[str, int] = {}
    for line, (gene, label) in enumerate(zip(genes, labels), start=2):
        if gene in seen:
            return f"line {line}: gene {gene!r} appears again (first on line {seen[gene]}); each test gene once"
        seen[gene] = line
        if gene not in trusted.labels:
            return f"line {line}: gene {gene!r} is not a test gene of {where}"
        if label != trusted.labels[gene]:
            return f"line {line}: gene {gene!r} has label {label}; the test split of {where} says {trusted.labels[gene]}"
    missing = [g for g in trusted.labels if g not in seen]
    if missing:
        return (f"{len(missing)} of the {len(trusted.labels)} test genes of {where} are missing "
                f"(e.g. {missing[0]!r}): every test gene must be predicted")
    return None


def check_ceiling(path: Path, manifest: dict, records: dict[str, dict], reject,
                  splits: SplitLookup = registry_split) -> None:
    """On simulated data, a test AUROC above the task's ceiling (oracle AUROC + CEILING_MARGIN) is refused."""
    for rel, rec in _seed_records(records):
        if not rec["dataset"].get("simulated"):
            continue
        trusted = _trusted(rec, manifest, splits)
        if trusted is None or trusted.oracle_auroc is None:
            continue
        claimed = float(rec["metrics"]["test"]["auroc"])
        if claimed > trusted.oracle_auroc + CEILING_MARGIN:
            reject(path / rel, f"test AUROC {claimed:.4f} is above the ceiling of {rec['dataset']['name']}/"
                               f"{rec['task']['name']}: the simulator's oracle AUROC {trusted.oracle_auroc:.4f} "
                               f"(+ {CEILING_MARGIN} margin); no model can rank better than the signal behind the labels")
