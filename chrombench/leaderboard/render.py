"""Render the leaderboard: leaderboard.md, leaderboard.csv and a self-contained index.html.

One section per (dataset name, version); published figures on the real data go in their own
"Reported on the real REMC data" section and are never ranked with measured numbers. The page
works offline: CSS and JS are inline, figures are inline SVG.
"""

from __future__ import annotations

import csv
import html
import io
import math
import os
import re
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

import numpy as np

from . import interpretation, mechanisms, plots, reported, verdict
from .collect import OUTSIDE_ENGINE, REFERENCE_MODEL, Board, Section, collect, genes_label

DEFAULT_RESULTS = (Path("chrombench-out/results"),)  # your own run; others' results only when asked (--results)
DEFAULT_OUT = Path("leaderboard")
HOW_TO_PRODUCE = ("chrombench run                               # quick suite, simulated data, every zoo model\n"
                  "chrombench submit path/to/model.py:MyModel --name NAME   # or your own model\n"
                  "chrombench leaderboard render")
SIMULATED_NOTE = ("Simulated data (simremc): these numbers measure models on a simulator of the 56 tasks, "
                  "not on the real REMC data. The oracle column of the per-task table is the simulator's ceiling: "
                  "the AUROC of the latent signal behind the labels.")
# simremc 1.1 draws each task's noise so that its ceiling is the published DeepChrome AUROC + 0.03
# (simulate.ORACLE_GAP): its agreement with the real order of difficulty is built in, not found.
CALIBRATION_CAPTION = ("Calibration, not validation: per task, the published DeepChrome AUROC on the real data "
                       "against the simulator's oracle ceiling and DeepChrome measured here. simremc 1.1 sets each "
                       "task's ceiling from that very published number, so the Spearman ρ is built in by the "
                       "calibration; it shows the calibration held, not that the simulator is realistic. The numbers "
                       "themselves are not comparable (simulated vs real).")
CSV_FIELDS = ("dataset", "version", "simulated", "model", "family", "task", "suite", "test_auroc_mean",
              "test_auroc_std", "n_seeds", "seeds", "ci_low", "ci_high", "ci_method", "oracle_auroc",
              "test_auprc_mean", "test_accuracy_mean", "n_parameters", "fit_time_s",
              "stopped_by", "epochs_run", "unconverged", "content_hash", "code_version", "reproduce")
# What a shipped suite's numbers are for, in one sentence, shown above its table.
SUITE_NOTES = {
    "quick": ("The quick suite is a first look in minutes under roadmap56's protocol (3 tasks, 2000/1000/2000 "
              "genes, converged fits); it is not the benchmark's verdict: differences under ~0.01 are noise at "
              "this size, and the verdict is roadmap56 (56 tasks, full size). Its order agrees with the full "
              "table only roughly: Kendall tau 0.700 over 16 models (benchmarks/quick_vs_full.py)."),
    "roadmap56": ("roadmap56 is the benchmark's verdict: 56 tasks at full size, each model's defaults held fixed "
                  "across them, converged fits; seed 0 everywhere and seeds 0-2 on the development tasks E003, "
                  "E112 and E123."),
}
RELATIONS_TITLE = "Published record vs measured"
UNCONVERGED_MARK = "†"
OUTSIDE_MARK = "‡"
OUTSIDE_NOTE = f"{OUTSIDE_MARK} {OUTSIDE_ENGINE} (`chrombench record`); the test split was held out by convention."
UNCONVERGED_NOTE = (f"{UNCONVERGED_MARK} unconverged: a fit stopped at its epoch cap (or time limit) while its "
                    "validation AUROC was still improving, diverged, or stalled (early stopping ended it with its "
                    "best epoch among its first three: it never learned). Such a number is a smoke test, not a "
                    "result.")


def fmt(x, digits: int = 3) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def fmt_p(p) -> str:
    if p is None or not np.isfinite(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _p_relation(p) -> str:
    text = fmt_p(p)
    return text.replace("<", "< ") if text.startswith("<") else f"= {text}"


REMC_DATASETS = ("simremc", "remc")  # the sections the published REMC tables speak to


def _kind(section: Section) -> str:
    """'simulated', 'real' (the REMC archive itself) or 'own' (a lab's imported or built data: real
    measurements, but not the data the published figures are on)."""
    return "simulated" if section.simulated else "real" if section.dataset == "remc" else "own"


def _shows_reported(board: Board) -> bool:
    """The published REMC tables belong beside REMC sections (or an empty page), not a lab's own task."""
    return not board.sections or any(s.dataset in REMC_DATASETS for s in board.sections)


def _title(section: Section) -> str:
    kind = _kind(section)
    split = f", {section.split} split" if section.split else ""
    return f"{section.dataset} {section.version}, {genes_label(section.genes)}{split} ({kind} data)"


_MD_SPECIAL = re.compile(r"([\\`\[\]|])")  # what breaks out of a cell: '|', a link, a code span, an escape


def _md(text: str) -> str:
    """A name as literal text in Markdown: a line break would start a heading, '|' end a table cell,
    '[x](...)' make a link, '<' start HTML; every such character is escaped (or a break made a space)."""
    text = " ".join(str(text).splitlines())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


CSV_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A cell a spreadsheet shows as text: one starting with a formula prefix (= + - @, tab, CR) gets a
    leading apostrophe (OWASP's CSV-injection rule); numbers are left as they are."""
    if isinstance(value, str) and value.startswith(CSV_FORMULA):
        try:
            float(value)
            return value  # "-0.5" is a number, not a formula
        except ValueError:
            return "'" + value
    return value


def _code(text: str) -> str:
    """A Markdown code span that a backtick in ``text`` (a crafted model name) cannot end early, nor a line
    break end the line (shown as a visible \\n instead)."""
    text = str(text).replace("\r", "\\r").replace("\n", "\\n")
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or longest else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _ranked_on_common_tasks(section: Section) -> bool:
    """The order is by the mean over the tasks every model has; when that is not all of them, the
    tables show that mean too, or the order would look wrong next to each model's own mean."""
    return len(section.models) >= 2 and 0 < len(section.complete_tasks) < len(section.tasks)


def reproduce_commands(board: Board, render_command: str | None = None) -> list[str]:
    cmds = [s.reproduce() for s in board.sections]
    return cmds + [render_command] if render_command and cmds else cmds


def _model_rows(section: Section) -> list[dict]:
    """The summary table: one row per model, best first."""
    rows = []
    for rank, m in enumerate(section.models, start=1):
        d = section.per_model[m]
        p_raw, p_holm = section.wilcoxon.get(m, (math.nan, math.nan))
        wins = section.wins.get(m)
        rows.append({"rank": rank, "model": m, "family": section.families.get(m, ""), "mean": d["mean"],
                     "common_mean": d.get("common_mean", math.nan),
                     "median": d["median"], "min": d["min"], "max": d["max"], "tasks": d["n"],
                     "avg_rank": section.avg_ranks.get(m, math.nan), "p_holm": p_holm, "p_raw": p_raw,
                     "wins": wins, "n_parameters": section.n_parameters.get(m, 0), **section.fits(m),
                     "outside": m in section.outside})
    return rows


def ended_by(row: dict) -> str:
    """'patience 62' or '† cap 3, patience 6': how a model's fits ended, unconverged ones marked."""
    if row.get("outside"):
        return "predictions from outside the engine"
    text = ", ".join(f"{k} {v}" for k, v in row["stopped_by"].items()) or "—"
    return f"{UNCONVERGED_MARK} {text}" if row["unconverged"] else text


def fmt_duration(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _cell_text(c, sep: str = " ± ") -> str:
    """'0.801 ± 0.002' over several seeds, '0.801' for one (no spread to show)."""
    spread = f"{sep}{c.std:.3f}" if len(c.values) > 1 else ""
    return f"{c.mean:.3f}{spread}" + (f" {UNCONVERGED_MARK}" if c.unconverged else "")


def _data_line(section: Section) -> str:
    n = len(section.content_hashes)
    return (f"Data: {section.dataset} {section.version}, {genes_label(section.genes)}; content hash "
            f"{section.content_hash[:16]} (sha256 over the {n} tasks' hashes, each in leaderboard.csv)")


def _stats_lines(section: Section) -> list[str]:
    lines = []
    n_common = len(section.complete_tasks)
    if len(section.models) >= 2 and n_common < len(section.tasks):
        lines.append(f"Ranks, tests and the order of the table use the {n_common} of {len(section.tasks)} tasks "
                     "that every model has.")
    if len(section.models) >= 2 and 2 <= n_common < 6:
        lines.append(f"With {n_common} tasks the signed-rank test cannot give p below {2 / 2 ** n_common:.3g} "
                     "(all tasks in one direction): no difference can be significant at 0.05 before 6 tasks.")
    if section.friedman is not None:
        fr = section.friedman
        lines.append(f"Friedman test over {fr.n} tasks, {fr.k} models: chi² = {fr.statistic:.2f}, "
                     f"p {_p_relation(fr.pvalue)}. Nemenyi critical difference (α = 0.05): CD = {section.cd:.2f} "
                     "average ranks.")
        lines.append(f"p (Holm): paired Wilcoxon signed-rank test over tasks against the top model "
                     f"({section.top}), Holm-corrected for {fr.k - 1} comparisons.")
    elif len(section.models) >= 2:
        lines.append("Rank tests need at least two tasks that every model has.")
    if section.wins:
        lines.append(f"Wins vs {REFERENCE_MODEL}: tasks where the model's test AUROC is higher than "
                     f"{REFERENCE_MODEL}'s (as counted in the AttentiveChrome paper).")
    if section.ci_methods:
        lines.append("Confidence intervals (95%): " + "; ".join(section.ci_methods) + ".")
    lines.append("Ended by: how each model's fits stopped (patience: early stopping, converged; tolerance: the "
                 "solver's criterion; complete: not iterative; cap/time/stalled: unconverged). Compute: tuning plus every "
                 "seed's fit, summed from the records: each fit's elapsed seconds, so fits that ran side by side on "
                 "shared cores each count in full and the sum can exceed the machine time the model took.")
    if any(section.fits(m)["unconverged"] for m in section.models):
        lines.append(UNCONVERGED_NOTE)
    if section.outside:
        lines.append(OUTSIDE_NOTE)
    return lines


# -- Markdown -------------------------------------------------------------------------------------------

def _md_table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> list[str]:
    align = align or ["---:"] * len(header)
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def markdown(board: Board, reproduce: list[str], title: str = "chrombench leaderboard") -> str:
    out = [f"# {title}", ""]
    if reproduce:
        out += ["Reproduce with: " + _code(" && ".join(reproduce)), ""]
    if not board.sections:
        out += ["**No results yet.** Produce them with:", "", "```bash", HOW_TO_PRODUCE, "```", ""]
    for s in board.sections:
        out += [f"## {_md(_title(s))}", ""]
        if s.simulated:
            out += [f"> {SIMULATED_NOTE}", ""]
        out += [f"{SUITE_NOTES[x]}" for x in s.suites if x in SUITE_NOTES and len(s.suites) == 1]
        out += [""] if len(s.suites) == 1 and s.suites[0] in SUITE_NOTES else []
        verdict_lines = _verdict_lines(s)  # paired tests over every pair of models: computed once
        out += [f"**{_md(line)}**" if i == 0 else f"- {_md(line)}" for i, line in enumerate(verdict_lines)]
        out += [""] if verdict_lines else []
        out += [f"Reproduce with: {_code(s.reproduce())}", "", _data_line(s), ""]
        if s.models and s.tasks:
            m0 = next((m for m in s.models if m not in s.outside), s.models[0])  # one that can be rebuilt
            t0 = next(t for t in s.tasks if (m0, t) in s.cells)
            out += [f"Any one cell: e.g. {_code(s.reproduce_cell(m0, t0))} (every cell's command is in "
                    "leaderboard.csv, column `reproduce`).", ""]
        has_wins = bool(s.wins)
        common = _ranked_on_common_tasks(s)
        header = ["#", "model"] + ([f"mean AUROC, {len(s.complete_tasks)} common tasks"] if common else [])
        header += ["mean AUROC", "median", "min", "max", "tasks", "avg rank", "p (Holm)"]
        header += [f"wins vs {REFERENCE_MODEL}"] if has_wins else []
        header += ["parameters", "ended by", "compute"]
        rows = []
        for r in _model_rows(s):
            name = _md(r["model"]) + (f" {UNCONVERGED_MARK}" if r["unconverged"] else "") \
                + (f" {OUTSIDE_MARK}" if r["outside"] else "")
            row = [str(r["rank"]), name] + ([fmt(r["common_mean"])] if common else [])
            row += [fmt(r["mean"]), fmt(r["median"]), fmt(r["min"]), fmt(r["max"]),
                    str(r["tasks"]), fmt(r["avg_rank"], 2), fmt_p(r["p_holm"])]
            if has_wins:
                row.append(f"{r['wins'][0]}/{r['wins'][1]}" if r["wins"] else "—")
            rows.append(row + [f"{r['n_parameters']:,}", ended_by(r), fmt_duration(r["compute_s"])])
        out += _md_table(header, rows, ["---:", ":---"] + ["---:"] * (len(header) - 2)) + [""]
        out += [f"- {_md(line)}" for line in _stats_lines(s)] + [""]
        out += _md_tie_groups(s)
        out += ["### Test AUROC per task (mean ± std over seeds; one value where one seed ran)", ""]
        show_oracle = s.simulated and any(v is not None for v in s.oracle.values())
        header = ["task"] + (["oracle (ceiling)"] if show_oracle else []) \
            + [_md(m) + (f" {OUTSIDE_MARK}" if m in s.outside else "") for m in s.models]
        rows = []
        for t in s.tasks:
            row = [_md(t)] + ([fmt(s.oracle[t])] if show_oracle else [])
            for m in s.models:
                c = s.cells.get((m, t))
                row.append(_cell_text(c) if c else "—")
            rows.append(row)
        out += _md_table(header, rows, [":---"] + ["---:"] * (len(header) - 1)) + [""]
        if s.simulated:
            for label, (tasks, _, _, rho) in plots.calibration_points(s).items():
                out.append(f"- Calibration check (built in on simremc 1.1, see the page's figure): Spearman ρ = "
                           f"{rho:.2f} between the published DeepChrome AUROC (real data) and {label} over "
                           f"{len(tasks)} tasks.")
            out.append("")
        out += interpretation.markdown(s)
        out += mechanisms.markdown(s)
    for s in board.sections:
        out += _md_relations(s) if s.dataset in REMC_DATASETS else []
    out += _md_reported() if _shows_reported(board) else []
    if board.skipped:
        out += ["## Records left out", ""] + [f"- {_code(p)}: {_md(why)}" for p, why in board.skipped] + [""]
    return "\n".join(out)


def _verdict_lines(s: Section) -> list[str]:
    """The page's first lines for a section: what its table can tell (ties, ceiling, published record)."""
    lines = [x for x in (verdict.tie_sentence(s), verdict.headroom_sentence(s)) if x]
    agree, counted = verdict.agreement(s)
    if counted:
        lines.append(f"Published record: {agree} of {counted} same-data relations from the papers hold here "
                     "in direction (panel below).")
    return lines


def _md_relations(s: Section) -> list[str]:
    rows = verdict.relation_rows(s)
    if not rows:
        return []
    out = [f"## {RELATIONS_TITLE}: {_title(s)}", "", f"> {verdict.RELATIONS_NOTE}", ""]
    body = [[_md(r["relation"]), r["published"], r["published_wins"], r["measured"], r["measured_wins"],
             r["verdict"], _md(r["source"])] for r in rows]
    out += _md_table(["relation", "published mean AUROC (real data)", "published wins", "measured mean AUROC",
                      "measured wins", "direction", "source"], body,
                     [":---", "---:", "---:", "---:", "---:", ":---", ":---"])
    reason, held = verdict.why_not(s), verdict.calibration_sentence(s)
    return (out + ([""] + [held] if held else []) + ([""] + [f"Why a direction fails here: {reason}"] if reason else [])
            + [""])


def _md_tie_groups(s: Section) -> list[str]:
    groups = verdict.tie_groups(s)
    if len(s.models) < 2 or len(s.complete_tasks) < 2:
        return []
    return ["Tie groups (best first; paired Wilcoxon over tasks against each group's leader, Holm, α = 0.05): "
            + " > ".join("{" + ", ".join(_md(m) for m in g) + "}" for g in groups), ""]


def _md_reported() -> list[str]:
    out = [f"## {reported.SECTION_TITLE}", "",
           "> Published figures, not measured by chrombench; shown for reference and never ranked with the "
           "results above.", "", "### Summary over the 56 cell types", ""]
    rows = [[r.model, fmt(r.mean, 4), fmt(r.median, 4), fmt(r.max, 4), fmt(r.min, 4),
             "—" if r.better_than_deepchrome is None else f"{r.better_than_deepchrome}/56", r.source]
            for r in reported.summary_rows()]
    out += _md_table(["model", "mean", "median", "max", "min", "cells better than DeepChrome", "source"], rows,
                     [":---"] + ["---:"] * 5 + [":---"]) + [""]
    out += ["### DeepChrome test AUROC per cell type", ""]
    rows = [[r.task, r.cell_type, fmt(r.test_auroc, 2)] for r in reported.per_task_rows()]
    out += _md_table(["task", "cell type", "AUROC"], rows, [":---", ":---", "---:"]) + [""]
    out += ["Sources:", ""] + [f"- {c}" for c in reported.citations()] + [""]
    return out


# -- CSV ----------------------------------------------------------------------------------------------------

def csv_text(board: Board) -> str:
    """One row per (dataset, model, task) measured by chrombench. Reported figures are not in it."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for s in board.sections:
        for m in s.models:
            for t in s.tasks:
                c = s.cells.get((m, t))
                if c is None:
                    continue
                rec = c.record
                w.writerow({k: csv_cell(v) for k, v in {
                    "dataset": s.dataset, "version": s.version, "simulated": str(s.simulated).lower(), "model": m,
                    "family": s.families.get(m, ""), "task": t, "suite": rec.get("task", {}).get("suite") or "",
                    "test_auroc_mean": _num(c.mean), "test_auroc_std": _num(c.std), "n_seeds": len(c.values),
                    "seeds": " ".join(map(str, c.seeds)), "ci_low": _num(c.ci[0]), "ci_high": _num(c.ci[1]),
                    "ci_method": c.ci_method or "", "oracle_auroc": _num(c.oracle),
                    "test_auprc_mean": _num(c.metric_mean("test_auprc")),
                    "test_accuracy_mean": _num(c.metric_mean("test_accuracy")),
                    "n_parameters": rec.get("model", {}).get("n_parameters", ""),
                    "fit_time_s": _num(rec.get("fit_time_s")),
                    "stopped_by": " ".join(map(str, c.stop_reasons())),
                    "epochs_run": " ".join(map(str, _as_list(c.training.get("epochs_run", "")))),
                    "unconverged": c.unconverged, "content_hash": rec.get("dataset", {}).get("content_hash", ""),
                    "code_version": rec.get("code_version", ""), "reproduce": s.reproduce_cell(m, t)}.items()})
    return buf.getvalue()


def _as_list(x) -> list:
    return x if isinstance(x, list) else ([x] if x != "" else [])


def _num(x) -> str:
    return "" if x is None or not np.isfinite(x) else f"{x:.6g}"


# -- HTML ----------------------------------------------------------------------------------------------------

def _td(text: str, value=None, cls: str = "") -> str:
    attrs = f' class="{cls}"' if cls else ""
    if value is not None:
        attrs += f' data-value="{"" if not np.isfinite(value) else f"{value:.6g}"}"'
    return f"<td{attrs}>{html.escape(text)}</td>"


def _table(header: list[str], rows: list[str], cls: str = "sortable", text_cols: tuple[int, ...] = (1,)) -> str:
    ths = "".join(f'<th class="text">{html.escape(h)}</th>' if i in text_cols else f"<th>{html.escape(h)}</th>"
                  for i, h in enumerate(header))
    return (f'<div class="table-wrap"><table class="{cls}"><thead><tr>{ths}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _html_section(s: Section, index: int) -> str:
    badge = {"simulated": '<span class="badge sim">simulated</span>', "real": '<span class="badge real">real data</span>',
             "own": '<span class="badge own">own data</span>'}[_kind(s)]
    parts = [f'<section class="results" id="section-{index}" data-dataset="{html.escape(s.key)}">',
             f"<h2>{html.escape(s.dataset)} {html.escape(s.version)}, {html.escape(genes_label(s.genes))}"
             f"{', ' + html.escape(s.split) + ' split' if s.split else ''} {badge}</h2>"]
    if s.simulated:
        parts.append(f'<p class="note">{html.escape(SIMULATED_NOTE)}</p>')
    if len(s.suites) == 1 and s.suites[0] in SUITE_NOTES:
        parts.append(f'<p class="suite-note">{html.escape(SUITE_NOTES[s.suites[0]])}</p>')
    lines = _verdict_lines(s)
    if lines:
        parts.append('<div class="verdict"><p><strong>' + html.escape(lines[0]) + "</strong></p>"
                     + "".join(f"<p>{html.escape(x)}</p>" for x in lines[1:]) + "</div>")
    parts.append(f'<p>Reproduce with:</p><code class="cmd">{html.escape(s.reproduce())}</code>')
    parts.append(f'<p class="meta data-hash">{html.escape(_data_line(s))}</p>')
    common = _ranked_on_common_tasks(s)
    header = ["#", "model", "family"] + ([f"mean AUROC, {len(s.complete_tasks)} common tasks"] if common else [])
    header += ["mean AUROC", "median", "min", "max", "tasks", "avg rank", "p (Holm) vs top"]
    header += [f"wins vs {REFERENCE_MODEL}"] if s.wins else []
    header += ["parameters", "ended by", "compute"]
    rows = []
    for r in _model_rows(s):
        name = r["model"] + (f" {UNCONVERGED_MARK}" if r["unconverged"] else "") + (f" {OUTSIDE_MARK}" if r["outside"] else "")
        cells = [_td(str(r["rank"]), r["rank"]), _td(name, cls="text model" + (" unconverged" if r["unconverged"] else "")
                                                     + (" outside" if r["outside"] else "")),
                 _td(r["family"], cls="text")]
        if common:
            cells.append(_td(fmt(r["common_mean"]), r["common_mean"], "best" if r["rank"] == 1 else ""))
        cells += [_td(fmt(r["mean"]), r["mean"], "best" if r["rank"] == 1 and not common else ""),
                 _td(fmt(r["median"]), r["median"]),
                 _td(fmt(r["min"]), r["min"]), _td(fmt(r["max"]), r["max"]), _td(str(r["tasks"]), r["tasks"]),
                 _td(fmt(r["avg_rank"], 2), r["avg_rank"]), _td(fmt_p(r["p_holm"]), r["p_holm"])]
        if s.wins:
            w = r["wins"]
            cells.append(_td(f"{w[0]}/{w[1]}", w[0]) if w else _td("—", math.nan))
        cells.append(_td(f"{r['n_parameters']:,}", r["n_parameters"]))
        cells += [_td(ended_by(r), cls="text"), _td(fmt_duration(r["compute_s"]), r["compute_s"])]
        rows.append(f'<tr data-model="{html.escape(r["model"])}">{"".join(cells)}</tr>')
    n = len(header)
    parts.append(_table(header, rows, text_cols=(1, 2, n - 2)))
    parts.append("<ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in _stats_lines(s)) + "</ul>")
    parts.append(_html_tie_groups(s))
    parts.append(_figure(plots.heatmap(s), "Test AUROC per model and task (mean over seeds)."
                         + (" In grey: the simulator's oracle AUROC, the ceiling." if s.simulated else "")))
    parts.append(_figure(plots.distributions(s), "Per-model distribution of per-task test AUROC: box = quartiles, "
                                                 "dots = tasks."))
    cd = plots.cd_diagram(s)
    if cd:
        parts.append(_figure(cd, "Critical-difference diagram: models joined by a red bar are not significantly "
                                 "different (Nemenyi, α = 0.05)."))
    scatter = plots.calibration_scatter(s)
    if scatter:
        parts.append(_figure(scatter, CALIBRATION_CAPTION))
    parts.append(_per_task_table(s))
    parts += [b for b in [interpretation.html_block(s, _td, _table)] if b]  # simulated runs with scores only
    parts += [b for b in [mechanisms.html_block(s, _td, _table)] if b]  # simremc 1.2 on: planted mechanisms
    parts.append("</section>")
    return "\n".join(parts)


def _html_tie_groups(s: Section) -> str:
    if len(s.models) < 2 or len(s.complete_tasks) < 2:
        return ""
    text = " > ".join("{" + ", ".join(g) + "}" for g in verdict.tie_groups(s))
    return (f'<p class="tie-groups">Tie groups (best first; paired Wilcoxon over tasks against each group\'s '
            f"leader, Holm, α = 0.05): {html.escape(text)}</p>")


def _html_relations(s: Section, index: int) -> str:
    rows = verdict.relation_rows(s)
    out = ""
    if rows:
        body = []
        for r in rows:
            cls = "text" + ("" if r["agrees"] or not r["counted"] else " disagrees")
            body.append("<tr>" + "".join([_td(r["relation"], cls="text"), _td(r["published"], cls="text"),
                                          _td(r["published_wins"], cls="text"), _td(r["measured"], cls="text"),
                                          _td(r["measured_wins"], cls="text"), _td(r["verdict"], cls=cls),
                                          _td(r["source"], cls="text")]) + "</tr>")
        out += (f'<section class="relations-section" id="relations-{index}"><h2>{html.escape(RELATIONS_TITLE)}: '
                f'{html.escape(_title(s))}</h2><p class="note">{html.escape(verdict.RELATIONS_NOTE)}</p>'
                + _table(["relation", "published mean AUROC (real data)", "published wins", "measured mean AUROC",
                          "measured wins", "direction", "source"], body, cls="relations", text_cols=tuple(range(7)))
                + (f"<p>{html.escape(verdict.calibration_sentence(s))}</p>" if verdict.calibration_sentence(s) else "")
                + (f"<p>Why a direction fails here: {html.escape(verdict.why_not(s))}</p>" if verdict.why_not(s) else "")
                + "</section>")
    return out


def _per_task_table(s: Section) -> str:
    show_oracle = s.simulated and any(v is not None for v in s.oracle.values())
    header = ["model", "task", "mean AUROC", "std", "seeds", "CI low", "CI high", "CI method"]
    header += ["oracle", "gap to oracle"] if show_oracle else []
    rows = []
    for m in s.models:
        for t in s.tasks:
            c = s.cells.get((m, t))
            if c is None:
                continue
            cells = [_td(m, cls="text"), _td(t, cls="text"), _td(fmt(c.mean), c.mean), _td(fmt(c.std), c.std),
                     _td(str(len(c.values)), len(c.values)), _td(fmt(c.ci[0]), c.ci[0]), _td(fmt(c.ci[1]), c.ci[1]),
                     _td(c.ci_method or "—", cls="text")]
            if show_oracle:
                o = c.oracle if c.oracle is not None else math.nan
                cells += [_td(fmt(o), o), _td(fmt(o - c.mean), o - c.mean)]
            rows.append(f"<tr>{''.join(cells)}</tr>")
    return ("<details><summary>Every model and task: mean and std over seeds, 95% confidence intervals"
            f"</summary>{_table(header, rows, text_cols=(0, 1, 7))}</details>")


def _figure(svg: str, caption: str) -> str:
    return f'<figure class="plot">{svg}<figcaption>{html.escape(caption)}</figcaption></figure>'


def _html_reported() -> str:
    rows = []
    for r in reported.summary_rows():
        better = "—" if r.better_than_deepchrome is None else f"{r.better_than_deepchrome}/56"
        rows.append("<tr>" + "".join([_td(r.model, cls="text"), _td(fmt(r.mean, 4), r.mean),
                                      _td(fmt(r.median, 4), r.median), _td(fmt(r.max, 4), r.max),
                                      _td(fmt(r.min, 4), r.min), _td(better), _td(r.source, cls="text")]) + "</tr>")
    summary = _table(["model", "mean", "median", "max", "min", "cells better than DeepChrome", "source"], rows,
                     cls="reported", text_cols=(0, 6))
    rows = [f"<tr>{_td(r.task, cls='text')}{_td(r.cell_type, cls='text')}{_td(fmt(r.test_auroc, 2), r.test_auroc)}</tr>"
            for r in reported.per_task_rows()]
    per_task = _table(["task", "cell type", "DeepChrome AUROC"], rows, cls="reported sortable", text_cols=(0, 1))
    cites = "".join(f"<li>{html.escape(c)}</li>" for c in reported.citations())
    return (f'<section class="reported-section" id="reported"><h2>{html.escape(reported.SECTION_TITLE)} '
            '<span class="badge reported">published</span></h2>'
            '<p class="note">Published figures on the real REMC data, not measured by chrombench: shown for '
            "reference and never ranked with the results above.</p>"
            f"<h3>Summary over the 56 cell types</h3>{summary}"
            f"<details><summary>DeepChrome test AUROC per cell type (56 tasks)</summary>{per_task}</details>"
            f"<h3>Sources</h3><ul>{cites}</ul></section>")


def html_page(board: Board, reproduce: list[str], title: str = "chrombench leaderboard") -> str:
    body = [f"<h1>{html.escape(title)}</h1>"]
    if reproduce:
        cmd = html.escape(" && ".join(reproduce))
        body.append(f'<p id="reproduce">Reproduce with:</p><code class="cmd">{cmd}</code>')
    if not board.sections:
        body.append('<section id="no-results"><h2>No results yet</h2><p>There are no result records to show. '
                    f'Produce them with:</p><code class="cmd">{html.escape(HOW_TO_PRODUCE)}</code></section>')
    else:
        names = ", ".join(f'<a href="#section-{i}">{html.escape(_title(s))}</a>' for i, s in enumerate(board.sections))
        link = f'; <a href="#reported">{html.escape(reported.SECTION_TITLE)}</a>' if _shows_reported(board) else ""
        body.append(f'<p class="meta">Sections (never ranked together): {names}{link}.</p>')
    body += [_html_section(s, i) for i, s in enumerate(board.sections)]
    body += [_html_relations(s, i) for i, s in enumerate(board.sections) if s.dataset in REMC_DATASETS]
    if _shows_reported(board):
        body.append(_html_reported())
    if board.skipped:
        items = "".join(f"<li><code>{html.escape(p)}</code>: {html.escape(w)}</li>" for p, w in board.skipped)
        body.append(f'<section id="skipped"><h2>Records left out</h2><ul class="skipped">{items}</ul></section>')
    template = Template(resources.files("chrombench.leaderboard").joinpath("template.html").read_text())
    return template.substitute(title=html.escape(title), body="\n".join(body))


# -- console ----------------------------------------------------------------------------------------------------

def console_table(records: list[dict]) -> str:
    """A plain-text table per dataset: model x task test AUROC mean±std and the mean over tasks."""
    board = collect(records, n_boot=0)
    if not board.sections:
        return "No results to show."
    blocks = []
    for s in board.sections:
        width = max([len("oracle (ceiling)")] + [len(m) for m in s.models]) + 2
        lines = [f"{s.dataset} {s.version} " + {"simulated": "(simulated data: not real results)", "real": "(real data)",
                                                 "own": "(own data)"}[_kind(s)]]
        head = f"{'model':<{width}}" + "".join(f"{t:>15}" for t in s.tasks) + f"{'mean':>9}"
        if s.wins:
            head += f"{'wins vs ' + REFERENCE_MODEL:>20}"
        lines += [head, "-" * len(head)]
        for i, m in enumerate(s.models):
            row = f"{m:<{width}}"
            for t in s.tasks:
                c = s.cells.get((m, t))
                text = _cell_text(c, sep="±") if c else "—"
                row += f"{text:>15}"
            row += f"{fmt(s.per_model[m]['mean']):>9}"
            if s.wins:
                w = s.wins.get(m)
                row += f"{(f'{w[0]}/{w[1]}' if w else '—'):>20}"
            lines.append(row)
        if s.simulated and any(v is not None for v in s.oracle.values()):
            vals = [s.oracle[t] for t in s.tasks]
            lines.append(f"{'oracle (ceiling)':<{width}}" + "".join(f"{fmt(v):>15}" for v in vals)
                         + f"{fmt(np.mean([v for v in vals if v is not None])):>9}")
        if any(s.fits(m)["unconverged"] for m in s.models):
            lines.append(UNCONVERGED_NOTE)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


# -- files -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rendered:
    markdown: Path
    csv: Path
    html: Path
    board: Board


def render_board(board: Board, out_dir: Path, reproduce: list[str] | None = None,
                 title: str = "chrombench leaderboard") -> Rendered:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    reproduce = reproduce if reproduce is not None else reproduce_commands(board)
    files = {"leaderboard.md": markdown(board, reproduce, title), "leaderboard.csv": csv_text(board),
             "index.html": html_page(board, reproduce, title)}
    for name, text in files.items():
        _atomic_write(out_dir / name, text)
    return Rendered(out_dir / "leaderboard.md", out_dir / "leaderboard.csv", out_dir / "index.html", board)


def render(result_dirs=DEFAULT_RESULTS, out_dir: Path = DEFAULT_OUT, reproduce: str | None = None,
           render_command: str | None = None, n_boot: int = 1000, title: str = "chrombench leaderboard",
           write_manifest: bool = True, validate=None) -> Rendered:
    """Read every record under ``result_dirs`` and write the three files into ``out_dir``.

    ``reproduce`` is the command printed at the top; by default it is inferred from the records
    (one `chrombench run` per section) followed by ``render_command``. ``validate``: see ``gather``.
    """
    records, left_out = gather(result_dirs, validate)
    board = collect(records, n_boot=n_boot)
    board.skipped[:0] = left_out
    cmds = [reproduce] if reproduce else reproduce_commands(board, render_command)
    rendered = render_board(board, out_dir, cmds, title)
    if write_manifest:  # what `leaderboard validate` re-renders the page from (leaderboard.pages)
        from .pages import write_manifest as write_page_manifest

        write_page_manifest(out_dir, result_dirs, reproduce=reproduce, render_command=render_command, n_boot=n_boot,
                            title=title)
    return rendered


def gather(result_dirs, validate=None) -> tuple[list[dict], list[tuple[str, str]]]:
    """The records to show, and what was left out. A folder holding bundles gives only the records of
    bundles that pass ``validate`` (a rejected bundle, or a record beside the bundles, is listed as
    left out): a submission is shown only as checked. Any other folder (your own run's output) is
    read as it is; its records still pass the schema and digest checks in ``collect``.

    ``validate(bundle) -> BundleReport`` is ``validate.validate_bundle`` unless given (``leaderboard
    validate`` passes the reports it already has)."""
    from .. import results
    from .validate import RECORDS_DIR, find_bundles, loose_records, validate_bundle

    validate = validate or validate_bundle

    records, left_out = [], []
    for root in map(Path, result_dirs):
        if not root.exists():
            continue
        bundles = find_bundles(root)
        if not bundles:
            records += results.read_records(root)
            continue
        for bundle in bundles:
            report = validate(bundle)
            if report.ok:
                records += results.read_records(bundle / RECORDS_DIR)
            else:
                more = f" (and {len(report.rejections) - 1} more)" if len(report.rejections) > 1 else ""
                left_out.append((str(bundle), f"bundle rejected by `chrombench leaderboard validate`: "
                                              f"{report.rejections[0]}{more}"))
        left_out += [(str(f), "outside any bundle, so never validated") for f in loose_records(root, bundles)]
    return records, left_out


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a published page is meant to be read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
