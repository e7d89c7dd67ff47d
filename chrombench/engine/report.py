"""Plain-text tables of summary records (the fallback when chrombench.leaderboard is absent)."""

from __future__ import annotations

import numpy as np


def plain_table(summaries: list[dict]) -> str:
    """Models x tasks of test AUROC mean±std over seeds, and each model's mean over tasks."""
    if not summaries:
        return "No results."
    tasks = list(dict.fromkeys(s["task"]["name"] for s in summaries))
    cells: dict[str, dict[str, tuple[float, float]]] = {}
    for s in summaries:
        m = s["metrics"].get("test_auroc")
        if m is not None:
            cells.setdefault(s["model"]["name"], {})[s["task"]["name"]] = (m["mean"], m["std"])
    order = sorted(cells, key=lambda name: -np.mean([v[0] for v in cells[name].values()]))
    width = max(len("model"), *(len(n) for n in order))
    head = f"{'model':<{width}}  " + "  ".join(f"{t:>13}" for t in tasks) + f"  {'mean':>6}"
    lines = ["Test AUROC (mean±std over seeds)", head, "-" * len(head)]
    for name in order:
        row = [f"{cells[name][t][0]:.3f}±{cells[name][t][1]:.3f}" if t in cells[name] else "-" for t in tasks]
        mean = np.mean([v[0] for v in cells[name].values()])
        lines.append(f"{name:<{width}}  " + "  ".join(f"{c:>13}" for c in row) + f"  {mean:6.3f}")
    sim = {bool(s["dataset"]["simulated"]) for s in summaries}
    if True in sim:
        lines.append("Simulated data (simremc): not comparable to results on the real REMC archive.")
    return "\n".join(lines)
