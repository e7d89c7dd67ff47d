"""What a section's table can and cannot tell: tie groups, the simulator's ceiling and headroom, and
the published same-data relations set beside what was measured here.

Pure functions over a ``collect.Section``; render.py turns them into lines of Markdown and HTML.
"""

from __future__ import annotations

import csv
import functools
import io
import math
from dataclasses import dataclass
from importlib import resources

import numpy as np

from . import stats
from .collect import REFERENCE_MODEL, Section

ALPHA = 0.05


# -- tie groups ---------------------------------------------------------------------------------------------

def tie_groups(section: Section, alpha: float = ALPHA) -> list[list[str]]:
    """The models in table order, cut into groups that paired tests over tasks cannot separate.

    From the best remaining model (the group's leader), the group runs on down the table for as long as
    each next model's paired Wilcoxon signed-rank test against the leader, Holm-corrected over the
    remaining models, is not significant at ``alpha``; the first model that is starts the next group.
    Tests use the tasks every model has. With fewer than 2 such tasks every model is its own group.
    """
    models = list(section.models)
    cols = [section.tasks.index(t) for t in section.complete_tasks]
    if len(models) < 2 or len(cols) < 2:
        return [[m] for m in models]
    sub = section.matrix[:, cols]
    groups, start = [], 0
    while start < len(models):
        rest = list(range(start + 1, len(models)))
        raw = [stats.wilcoxon_paired(sub[start], sub[i]) for i in rest]
        adjusted = stats.holm(raw) if raw else []
        end = start + 1
        for i, p in zip(rest, adjusted):
            if not (np.isfinite(p) and p < alpha):
                end = i + 1
            else:
                break
        groups.append(models[start:end])
        start = end
    return groups


def tie_sentence(section: Section, alpha: float = ALPHA) -> str | None:
    """One sentence for the page's first lines: who is tied at the top, or that the top model stands alone."""
    groups = tie_groups(section, alpha)
    if len(section.models) < 2 or len(section.complete_tasks) < 2:
        return None
    top = groups[0]
    how = (f"paired Wilcoxon signed-rank tests over {len(section.complete_tasks)} tasks, Holm-corrected, "
           f"α = {alpha:g}")
    if len(top) == 1:
        return f"{top[0]} is first, separated from every other model ({how})."
    if len(top) == len(section.models):
        return f"No two of the {len(top)} models can be told apart: they form one tie group ({how})."
    names = ", ".join(top[:-1]) + f" and {top[-1]}"
    return f"{names} are tied at the top: the table cannot order them ({how})."


# -- ceiling ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Headroom:
    mean_ceiling: float  # mean oracle AUROC over the section's tasks
    reference_mean: float  # mean of REFERENCE_MODEL over the same tasks (NaN without it)
    best_model: str
    best_mean: float

    @property
    def room_over_reference(self) -> float:
        """The largest mean gain over DeepChrome the simulator leaves: ceiling minus DeepChrome."""
        return self.mean_ceiling - self.reference_mean

    @property
    def best_gap(self) -> float:
        return self.mean_ceiling - self.best_mean


def headroom(section: Section) -> Headroom | None:
    """The simulator's ceiling over the tasks that have one; None for real data."""
    tasks = [t for t in section.tasks if section.oracle.get(t) is not None]
    if not section.simulated or not tasks or not section.models:
        return None
    cols = [section.tasks.index(t) for t in tasks]

    def mean_of(model: str) -> float:
        row = section.matrix[section.models.index(model), cols]
        return float(np.mean(row)) if np.all(np.isfinite(row)) else math.nan

    best = section.models[0]
    ref = mean_of(REFERENCE_MODEL) if REFERENCE_MODEL in section.models else math.nan
    return Headroom(float(np.mean([section.oracle[t] for t in tasks])), ref, best, mean_of(best))


def headroom_sentence(section: Section) -> str | None:
    h = headroom(section)
    if h is None:
        return None
    text = f"Ceiling: the simulator's oracle AUROC averages {h.mean_ceiling:.3f} over these tasks"
    if np.isfinite(h.reference_mean):
        text += (f"; {REFERENCE_MODEL} here averages {h.reference_mean:.3f}, so no model can beat it by more than "
                 f"{h.room_over_reference:.3f} on average")
    if np.isfinite(h.best_mean):
        text += f"; the best model ({h.best_model}) sits {h.best_gap:.3f} below the ceiling"
    return text + "."


# -- published relations ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PublishedRelation:
    id: str
    better: str  # zoo name of the model published as better
    worse: str
    better_mean: float
    worse_mean: float
    better_wins: int | None  # tasks (of n_tasks) where ``better`` beat ``worse``, where published
    n_tasks: int
    counted: bool  # measured on the same archive and binning: a disagreement in direction counts
    source: str
    note: str


@functools.lru_cache(maxsize=1)
def published_relations() -> tuple[PublishedRelation, ...]:
    """The declarative table ``published_relations.tsv``: one published pairwise relation per row."""
    text = resources.files("chrombench.leaderboard").joinpath("published_relations.tsv").read_text()

    def num(x: str) -> float:
        return float(x) if x.strip() else math.nan

    out = []
    for r in csv.DictReader(io.StringIO(text), delimiter="\t"):
        out.append(PublishedRelation(
            id=r["id"], better=r["better"], worse=r["worse"], better_mean=num(r["better_mean"]),
            worse_mean=num(r["worse_mean"]), better_wins=int(r["better_wins"]) if r["better_wins"].strip() else None,
            n_tasks=int(r["n_tasks"]), counted=r["counted"].strip() == "yes", source=r["source"], note=r["note"]))
    return tuple(out)


@dataclass(frozen=True)
class MeasuredRelation:
    relation: PublishedRelation
    tasks: int  # tasks both models have here
    better_mean: float
    worse_mean: float
    better_wins: int

    @property
    def agrees(self) -> bool:
        """The published direction holds here: the published-better model has the higher mean AUROC."""
        return self.better_mean > self.worse_mean


def measured_relations(section: Section) -> list[MeasuredRelation]:
    """Each published relation whose two models are both in ``section``, measured over their common tasks."""
    out = []
    for rel in published_relations():
        if rel.better not in section.models or rel.worse not in section.models:
            continue
        a = section.matrix[section.models.index(rel.better)]
        b = section.matrix[section.models.index(rel.worse)]
        both = np.isfinite(a) & np.isfinite(b)
        if not both.any():
            continue
        out.append(MeasuredRelation(rel, int(both.sum()), float(a[both].mean()), float(b[both].mean()),
                                    int((a[both] > b[both]).sum())))
    return out


def agreement(section: Section) -> tuple[int, int]:
    """(reproduced, counted): published same-data directions that hold here, of those measurable here."""
    counted = [m for m in measured_relations(section) if m.relation.counted]
    return sum(m.agrees for m in counted), len(counted)


def relation_rows(section: Section) -> list[dict]:
    """The panel: published vs measured, one row per relation measurable here."""
    rows = []
    for m in measured_relations(section):
        r = m.relation
        wins = f"{r.better_wins}/{r.n_tasks}" if r.better_wins is not None else "—"
        verdict = ("reproduced" if m.agrees else "DISAGREES in direction") if r.counted else "not counted"
        rows.append({"relation": f"{r.better} > {r.worse}", "published": f"{r.better_mean:.4f} vs {r.worse_mean:.4f}"
                     if np.isfinite(r.better_mean) else "—", "published_wins": wins,
                     "measured": f"{m.better_mean:.4f} vs {m.worse_mean:.4f}",
                     "measured_wins": f"{m.better_wins}/{m.tasks}", "verdict": verdict,
                     "source": f"{r.source}; {r.note}", "agrees": m.agrees, "counted": r.counted})
    return rows


RELATIONS_NOTE = ("Published relations: pairs of models compared on the same real archive (Zenodo 2652278) in the "
                  "papers, set beside the same pair measured here. \"Reproduced\" means the published-better model "
                  "also has the higher mean AUROC here; rows on other data processing are shown but not counted. "
                  "On simulated data this checks the simulator as much as the models.")

# Why a published direction can fail on the simulator, said once under the panel when one does.
SIMULATOR_WHY_NOT = {
    "1.1": ("simremc 1.1 was calibrated so that each task's ceiling is DeepChrome's published AUROC + 0.03; no "
            "planted mechanism was calibrated to the published pairwise relations, so a model family that wins "
            "on the real archive need not win here (simremc 1.2 is to be calibrated on them)."),
}


def calibrated_relations(section: Section) -> tuple[str, ...] | None:
    """Relation ids the section's simulator was calibrated on; None where that question does not arise
    (real data; simremc 1.1, whose only calibration is each ceiling, see ``SIMULATOR_WHY_NOT``)."""
    if not section.simulated or section.version.split("+")[0] != "1.2":
        return None
    from ..data import simulate12

    return tuple(simulate12.CALIBRATED_RELATIONS)


def calibration_sentence(section: Section) -> str | None:
    """Which rows of the panel the simulator was calibrated on, and so which are held-out evidence."""
    calibrated = calibrated_relations(section)
    if calibrated is None:
        return None
    shown = [m.relation.id for m in measured_relations(section) if m.relation.counted]
    used = [i for i in shown if i in calibrated]
    if not used:
        return (f"Held out: simremc {section.version.split('+')[0]}'s mechanism weights were not calibrated on any "
                "of these relations (simulate12.CALIBRATED_RELATIONS is empty), so each row tests the simulator "
                "and the models rather than restating the calibration.")
    held = [i for i in shown if i not in calibrated]
    return (f"Calibrated on: {', '.join(used)} (its mechanism weights were tuned to reproduce them); held out: "
            f"{', '.join(held) if held else 'none'}.")


def why_not(section: Section) -> str | None:
    """One sentence on why a counted published direction fails here, or None when all hold."""
    if not any(m.relation.counted and not m.agrees for m in measured_relations(section)):
        return None
    if section.simulated:
        major = section.version.split("+")[0]
        return SIMULATOR_WHY_NOT.get(major, f"simremc {major} does not plant what makes the published order hold.")
    return ("This dataset is not the archive the papers used (other genes, bins or labels), so their relations "
            "need not hold on it.")

