"""``chrombench ablate``: AttentiveChrome against its ablations, paired over tasks.

Every variant runs under the same protocol (``run_evaluations``, same budgets and seeds). The
comparison pairs each ablation with the full model task by task (mean test AUROC over seeds):
the difference, how many tasks the full model wins, and the Wilcoxon signed-rank test over tasks.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..models.registry import ABLATIONS
from .run import RunConfig, run_evaluations

REFERENCE = ABLATIONS[0]  # the full model


@dataclasses.dataclass
class Comparison:
    reference: str
    tasks: list[str]
    reference_auroc: dict[str, float]  # task -> mean test AUROC of the full model
    rows: list[dict]  # per ablation: deltas per task, mean delta, wins, ties, n, p-value or reason


def run_ablations(cfg: RunConfig, progress: bool = True, models: tuple[str, ...] | None = None):
    """Run the full model (``models[0]``, default: the zoo's ABLATIONS) and its ablations under the same
    protocol and budget; return (summaries, Comparison)."""
    models = tuple(models or ABLATIONS)
    cfg = dataclasses.replace(cfg, models=list(models))
    summaries = run_evaluations(cfg, progress=progress)
    return summaries, compare(summaries, reference=_name(models[0]))


def _name(entry: str) -> str:
    return entry.split("=", 1)[0] if "=" in entry else entry


def mean_test_auroc(summaries: list[dict]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for s in summaries:
        out.setdefault(s["model"]["name"], {})[s["task"]["name"]] = float(s["metrics"]["test_auroc"]["mean"])
    return out


def wilcoxon_p(deltas: list[float]) -> tuple[float | None, str]:
    """Two-sided Wilcoxon signed-rank p over paired differences, or (None, why not)."""
    d = np.asarray(deltas, dtype=float)
    if len(d) < 2:
        return None, "n/a (needs >= 2 tasks)"
    if np.all(d == 0):
        return None, "n/a (all tasks tied)"
    from scipy.stats import wilcoxon

    # zero_method="zsplit" keeps tied tasks in the ranking (split between signs) instead of dropping them
    res = wilcoxon(d, zero_method="zsplit", alternative="two-sided")
    return float(res.pvalue), f"{res.pvalue:.3g}"


def compare(summaries: list[dict], reference: str = REFERENCE) -> Comparison:
    by_model = mean_test_auroc(summaries)
    ref = by_model.get(reference, {})
    tasks = [t for t in dict.fromkeys(s["task"]["name"] for s in summaries) if t in ref]
    rows = []
    for model, vals in by_model.items():
        if model == reference:
            continue
        common = [t for t in tasks if t in vals]
        deltas = [vals[t] - ref[t] for t in common]  # ablation minus full: negative = the ablation hurts
        p, p_text = wilcoxon_p(deltas)
        rows.append({"model": model, "deltas": dict(zip(common, deltas)),
                     "mean_delta": float(np.mean(deltas)) if deltas else math.nan,
                     "wins": sum(d < 0 for d in deltas), "ties": sum(d == 0 for d in deltas), "n": len(deltas),
                     "p_value": p, "p_text": p_text})
    return Comparison(reference=reference, tasks=tasks, reference_auroc={t: ref[t] for t in tasks}, rows=rows)


def format_comparison(c: Comparison) -> str:
    """Tasks as rows (56 of them fit), one column per ablation; per-ablation statistics at the foot."""
    if not c.tasks:
        return f"No results for the full model {c.reference!r}; nothing to compare."
    cols = [r["model"] for r in c.rows]
    foot = [("mean Δ", [f"{r['mean_delta']:+.3f}" for r in c.rows]),
            ("full wins", [f"{r['wins']}/{r['n']}" + (f" ({r['ties']} tied)" if r["ties"] else "") for r in c.rows]),
            ("Wilcoxon p", [r["p_text"] for r in c.rows])]
    w = max(len(x) for x in cols + [c.reference] + [v for _, vals in foot for v in vals]) + 2
    tw = max(len("task"), *(len(t) for t in c.tasks)) + 2
    lines = [f"Test AUROC of {c.reference} (mean over seeds) and Δ = ablation − full per task",
             f"{'task':<{tw}}{c.reference:>{w}}" + "".join(f"{m:>{w}}" for m in cols)]
    lines.append("-" * len(lines[-1]))
    for t in c.tasks:
        cells = "".join(f"{r['deltas'][t]:>+{w}.3f}" if t in r["deltas"] else f"{'-':>{w}}" for r in c.rows)
        lines.append(f"{t:<{tw}}{c.reference_auroc[t]:>{w}.3f}" + cells)
    lines.append("-" * len(lines[1]))
    for label, vals in foot:
        lines.append(f"{label:<{tw}}{'':>{w}}" + "".join(f"{v:>{w}}" for v in vals))
    lines.append("full wins: tasks where the full model's test AUROC is higher than the ablation's. Wilcoxon "
                 "signed-rank test over tasks, two-sided, tied tasks split between signs (zsplit).")
    return "\n".join(lines)
