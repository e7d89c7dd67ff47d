"""Published numbers on the real REMC data: shown in their own section, never ranked.

Two sources, both shipped with the package:
- per-task DeepChrome test AUROC from the task specs (``tasks/*.toml``, ``[reported.deepchrome]``);
- summary rows over the 56 cell types (DeepChrome, LSTM, AttentiveChrome) from ``reported.tsv``,
  a copy of the reference table in the AttentiveChrome NeurIPS 2017 poster.
"""

from __future__ import annotations

import csv
import functools
import io
import math
from dataclasses import dataclass
from importlib import resources

from ..tasks import all_specs

SECTION_TITLE = "Reported on the real REMC data"


@dataclass(frozen=True)
class ReportedSummary:
    model: str
    metric: str
    mean: float
    median: float
    max: float
    min: float
    better_than_deepchrome: int | None  # cell types out of 56; None where the paper leaves it blank
    source: str


@dataclass(frozen=True)
class ReportedTask:
    task: str
    cell_type: str
    model: str
    test_auroc: float
    citation: str


def _number(text: str) -> float:
    return float(text) if text.strip() else math.nan


@functools.lru_cache(maxsize=1)
def summary_rows() -> tuple[ReportedSummary, ...]:
    text = resources.files("chrombench.leaderboard").joinpath("reported.tsv").read_text()
    rows = []
    for r in csv.DictReader(io.StringIO(text), delimiter="\t"):
        better = r["cells_better_than_deepchrome"].strip()
        rows.append(ReportedSummary(
            model=r["model"], metric=r["metric"], mean=_number(r["mean"]), median=_number(r["median"]),
            max=_number(r["max"]), min=_number(r["min"]), better_than_deepchrome=int(better) if better else None,
            source=r["source"]))
    return tuple(rows)


def per_task_rows() -> list[ReportedTask]:
    """Every published per-task figure in the task registry, in EID order."""
    rows = []
    for eid, spec in all_specs().items():
        for r in spec.reported:
            rows.append(ReportedTask(task=eid, cell_type=spec.name, model=r.model, test_auroc=r.test_auroc,
                                     citation=r.citation))
    return rows


def citations() -> list[str]:
    """The distinct sources, per-task first, in a stable order."""
    seen: dict[str, None] = {}
    for r in per_task_rows():
        seen.setdefault(r.citation)
    for r in summary_rows():
        seen.setdefault(r.source)
    return list(seen)
