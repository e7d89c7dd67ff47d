"""The "Which model learns which mechanism" tables of a simulated section (simremc 1.2 on): one row per
model, one column per planted mechanism, averaged over tasks. Two measures, each a table:

- **what the predictions carry** (``Section.uptake``, ``explain.uptake``): how strongly the model's output
  follows each mechanism's own latent, against the simple activity, as the labels do = 1.0. Measured
  from every bundle's test predictions, so every model has a row;
- **where the attributions fall** (``Section.mechanisms``): the model's explain map scored against each
  mechanism's planted map (cell AUROC on the test genes it touches, 0.5 = chance), from the seed-0
  records' ``interpretation_by_mechanism`` written by ``chrombench run``; a model whose records predate
  it has no row.

This is the ablation no real-data benchmark can run: two models with the same AUROC may read different
chromatin.
"""

from __future__ import annotations

import html
import math

import numpy as np

from .collect import Section
from .interpretation import _md  # user-supplied names in a Markdown cell

TITLE = "Which model learns which mechanism (simulated data)"
# one method per model, so that rows compare: integrated gradients where a model has it (every neural
# model), else saliency, else the model's own importances (linear and tree models)
METHOD_ORDER = ("integrated-gradients", "saliency", "importance")
NOTE = ("Each model's seed-0 fit: its explain map (one method per model, integrated gradients where it has it) "
        "scored against each mechanism the simulator planted, on the test genes that mechanism touches: cell "
        "AUROC, 0.5 = chance, averaged over tasks (± the standard deviation over tasks). A model near 0.5 in a "
        "column does not read that mechanism, whatever its AUROC; below 0.5 its attributions avoid the mechanism's "
        "cells. This measures where attributions fall, not whether the model decodes the mechanism's own feature: "
        "a map that overlaps a mark every model reads (H3K36me3 over the gene body) scores high for all of them. "
        "Each mechanism's share of a task's ceiling: chrombench tasks show TASK --data simremc@1.2.")


UPTAKE_TITLE = "Which mechanisms a model's predictions carry (simulated data)"
UPTAKE_NOTE = ("Each label was made from a latent that is a weighted sum of independent terms: the chromatin "
               "activity a simple reading sees, and each planted mechanism. Regressing a model's test "
               "predictions (their logit) on those terms gives how strongly its output moves with each one. A "
               "cell is that weight for the mechanism relative to the activity's, over the same ratio in the "
               "labels: 1.0 = the model weighs the mechanism as the labels do, 0 = its predictions ignore it, "
               "below 0 = they read it backwards. Mean ± sd over tasks (each task: the mean over its seeds), leaving "
               "out the tasks whose labels give the mechanisms no weight (the activity alone sets their ceiling). "
               "Independent of the score's scale and of noise that blurs every term alike, so models of different "
               "AUROC compare on what they read; a model that reads the activity itself poorly gets inflated "
               "ratios (a large sd over tasks). Measured by the leaderboard from each bundle's predictions, not "
               "reported by the model.")


def _over_tasks(vals: list[float]) -> tuple[float, float, int]:
    """A table cell: (mean, sd, tasks) of one mechanism's values over tasks; NaNs and 0 where none."""
    return (float(np.mean(vals)), float(np.std(vals)), len(vals)) if vals else (math.nan, math.nan, 0)


def uptake_rows(section: Section) -> tuple[list[str], list[dict]]:
    """(mechanisms, [{model, tasks, cells: {mechanism: (mean, sd, n)}}]), models in section order."""
    names: list[str] = []
    for by_mech in section.uptake.values():
        names += [n for n in by_mech if n not in names]
    out = []
    for model in section.models:
        per_task = [section.uptake[(model, t)] for t in section.tasks if (model, t) in section.uptake]
        if not per_task:
            continue
        cells = {}
        for name in names:
            vals = [float(u[name]) for u in per_task if name in u and np.isfinite(u[name])]
            cells[name] = _over_tasks(vals)
        out.append({"model": model, "method": "predictions", "tasks": max(c[2] for c in cells.values()), "cells": cells})
    return names, out


def _method(per_task: dict[str, dict]) -> str | None:
    have = {m for scores in per_task.values() for m in scores}
    return next((m for m in METHOD_ORDER if m in have), min(have) if have else None)


def rows(section: Section) -> tuple[list[str], list[dict]]:
    """(mechanisms, [{model, method, tasks, cells: {mechanism: (mean, sd, n)}}]), models in section order."""
    names: list[str] = []
    for scores in section.mechanisms.values():
        for by_mech in scores.values():
            names += [n for n in by_mech if n not in names]
    out = []
    for model in section.models:
        per_task = {t: section.mechanisms[(model, t)] for t in section.tasks if (model, t) in section.mechanisms}
        method = _method(per_task)
        if method is None:
            continue
        cells = {}
        for name in names:
            vals = [per_task[t][method][name]["cell_auroc"] for t in per_task
                    if name in per_task[t].get(method, {})]
            vals = [float(v) for v in vals if np.isfinite(v)]
            cells[name] = _over_tasks(vals)
        out.append({"model": model, "method": method,
                    "tasks": sum(1 for t in per_task if method in per_task[t]), "cells": cells})
    return names, out


def best_readers(names: list[str], table: list[dict]) -> dict[str, tuple[str, float]]:
    """mechanism -> (model, mean cell AUROC) of the model that reads it best."""
    best = {}
    for name in names:
        scored = [(r["cells"][name][0], r["model"]) for r in table if np.isfinite(r["cells"][name][0])]
        if scored:
            value, model = max(scored)
            best[name] = (model, value)
    return best


def _fmt(cell: tuple[float, float, int]) -> str:
    mean, sd, n = cell
    if not n:
        return "—"
    return f"{mean:.3f}" if n < 2 else f"{mean:.3f} ± {sd:.3f}"


UPTAKE_FLOOR = 0.1  # below this uptake no model "reads" a mechanism: the best of near-zeros is noise


def _markdown_table(title: str, note: str, names: list[str], table: list[dict], fmt=None,
                    floor: float | None = None) -> list[str]:
    fmt = fmt or _fmt
    header = ["model", "method"] + names + ["tasks"]
    out = [f"### {title}", "", f"> {note}", "", "| " + " | ".join(header) + " |",
           "|:---|:---|" + "---:|" * (len(names) + 1)]
    for r in table:
        out.append("| " + " | ".join([_md(r["model"]), _md(r["method"])] + [fmt(r["cells"][n]) for n in names]
                                     + [str(r["tasks"])]) + " |")
    out.append("")
    for name, (model, value) in best_readers(names, table).items():
        out.append(f"- {_md(name)}: no model's predictions carry it (best {value:.3f}, {_md(model)})"
                   if floor is not None and value < floor else f"- {_md(name)}: read best by {_md(model)} ({value:.3f})")
    return out + [""]


def _fmt_uptake(cell: tuple[float, float, int]) -> str:
    mean, sd, n = cell
    if not n:
        return "—"
    return f"{mean:+.2f}" if n < 2 else f"{mean:+.2f} ± {sd:.2f}"


def markdown(section: Section) -> list[str]:
    out = []
    names, table = uptake_rows(section)
    if table:
        out += _markdown_table(UPTAKE_TITLE, UPTAKE_NOTE, names, table, _fmt_uptake, floor=UPTAKE_FLOOR)
    names, table = rows(section)
    if table:
        out += _markdown_table(TITLE, NOTE, names, table)
    return out


def _heat(td_html: str, value: float, low: float, high: float) -> str:
    """A table cell tinted by its value (blue towards ``high``, red below 0), so that the model x
    mechanism grid reads as a heat map at a glance; the number stays the cell's text."""
    if not np.isfinite(value):
        return td_html
    if value >= 0:
        alpha, rgb = min(value / high, 1.0) * 0.55, "37,99,235"
    else:
        alpha, rgb = min(value / low, 1.0) * 0.55, "220,38,38"
    return td_html.replace("<td", f'<td style="background:rgba({rgb},{alpha:.2f})"', 1)


def _html_table(title, note, names, data, td, table, fmt, heat: tuple[float, float] | None = None,
                floor: float | None = None) -> str:
    best = {n: b for n, b in best_readers(names, data).items() if floor is None or b[1] >= floor}
    header = ["model", "method"] + names + ["tasks"]
    body = []
    for r in data:
        cells = [td(r["model"], cls="text model"), td(r["method"], cls="text")]
        for n in names:
            top = n in best and best[n][0] == r["model"]
            cell = td(fmt(r["cells"][n]), r["cells"][n][0], cls="best" if top else "")
            cells.append(_heat(cell, r["cells"][n][0], *heat) if heat else cell)
        cells.append(td(str(r["tasks"]), r["tasks"]))
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (f'<h3>{html.escape(title)}</h3><p class="note">{html.escape(note)}</p>'
            + table(header, body, text_cols=(0, 1)))


def html_block(section: Section, td, table) -> str:
    """Both tables for the page; ``td``/``table`` are render's cell and table builders."""
    out = ""
    names, data = uptake_rows(section)
    if data:
        out += _html_table(UPTAKE_TITLE, UPTAKE_NOTE, names, data, td, table, _fmt_uptake, heat=(-0.3, 1.0),
                           floor=UPTAKE_FLOOR)
    names, data = rows(section)
    if data:
        out += _html_table(TITLE, NOTE, names, data, td, table, _fmt)
    return out
