"""The "Interpretation vs planted truth" table of a simulated section: one row per (model, method),
each measure averaged over the tasks that have it, and the random-scores floor as its own row.

The numbers come from the seed-0 records (``interpretation``), written by ``chrombench run`` on
simulated tasks only: there is no planted truth on real data.
"""

from __future__ import annotations

import html
import math

import numpy as np

from .collect import Section

TITLE = "Interpretation vs planted truth (simulated data)"
RANDOM = "random"
MEASURES = (("cell_auroc", "cell AUROC"), ("precision_at_25", "precision@25"),
            ("precision_at_n_true", "precision@#true"), ("mark_spearman", "mark Spearman"),
            ("top_mark_accuracy", "top-mark accuracy"))
NOTE = ("Each explain method of each model's seed-0 fit, scored on a fixed label-stratified subsample of test "
        "genes against the simulator's planted importance map (mark x bin), averaged over tasks. Cell AUROC: "
        "how well the scores separate truly important cells from the rest (0.5 = chance). Random: random "
        "scores on the same genes, the floor every method must beat.")


def _mean(values: list[float]) -> float:
    vals = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(vals)) if vals else math.nan


def rows(section: Section) -> list[dict]:
    """[{model, method, tasks, <measure>: mean over tasks}], models in leaderboard order, random last."""
    out = []
    for model in section.models:
        per_task = {t: section.interpretation[(model, t)] for t in section.tasks if (model, t) in section.interpretation}
        methods = sorted({m for scores in per_task.values() for m in scores if m != RANDOM})
        for method in methods:
            have = [scores[method] for scores in per_task.values() if method in scores]
            out.append({"model": model, "method": method, "tasks": len(have),
                        **{k: _mean([h.get(k) for h in have]) for k, _ in MEASURES}})
    # the random floor depends only on the task's genes, so one value per task (the first model's)
    floor = {}
    for (model, task), scores in section.interpretation.items():
        if RANDOM in scores:
            floor.setdefault(task, scores[RANDOM])
    if out and floor:
        out.append({"model": "—", "method": RANDOM, "tasks": len(floor),
                    **{k: _mean([f.get(k) for f in floor.values()]) for k, _ in MEASURES}})
    return out


def _fmt(x: float) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{x:.3f}"


def _md(text) -> str:
    """User-supplied text in a Markdown cell: no raw HTML, no cell breaks (a model name is anyone's)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def markdown(section: Section) -> list[str]:
    table = rows(section)
    if not table:
        return []
    header = ["model", "method"] + [label for _, label in MEASURES] + ["tasks"]
    out = [f"### {TITLE}", "", f"> {NOTE}", "", "| " + " | ".join(header) + " |",
           "|:---|:---|" + "---:|" * (len(MEASURES) + 1)]
    for r in table:
        out.append("| " + " | ".join([_md(r["model"]), _md(r["method"])] + [_fmt(r[k]) for k, _ in MEASURES]
                                     + [str(r["tasks"])]) + " |")
    return out + [""]


def html_block(section: Section, td, table) -> str:
    """The same table for the page; ``td``/``table`` are render's cell and table builders."""
    data = rows(section)
    if not data:
        return ""
    header = ["model", "method"] + [label for _, label in MEASURES] + ["tasks"]
    body = []
    for r in data:
        cells = [td(r["model"], cls="text model"), td(r["method"], cls="text")]
        cells += [td(_fmt(r[k]), r[k]) for k, _ in MEASURES] + [td(str(r["tasks"]), r["tasks"])]
        cls = ' class="oracle"' if r["method"] == RANDOM else ""  # pinned last when sorting, greyed like the oracle
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return (f'<h3>{html.escape(TITLE)}</h3><p class="note">{html.escape(NOTE)}</p>'
            + table(header, body, text_cols=(0, 1)))
