"""simremc's versions side by side: the ceiling, how simple models track the real tasks, what a table can tell.

For each simulator version (default: 1.1 and 1.2, full size, all 56 tasks) it prints one column of:

- **ceiling**: the mean oracle AUROC (the AUROC of the latent signal behind the labels, on the test
  split) and its range;
- **logistic regression vs published**: LR at its defaults, fitted here per task, against the
  published DeepChrome AUROC on the real data: mean signed and absolute difference, Spearman rho (do
  the simple models keep the real tasks' order of difficulty?);
- from a roadmap56 table on that version, where one exists (``--table VERSION=DIR``, default: the
  shipped bundles of each version, 1.2's columns as they land): DeepChrome vs published (the same
  three numbers), the zoo's spread (best - worst model mean, spread of the top five), and the
  published same-data relations reproduced in direction
  (``chrombench/leaderboard/published_relations.tsv``), split into those a version was calibrated on
  (``CALIBRATED_RELATIONS`` of its generator) and those held out.

Generating a version's 56 tasks takes a few minutes the first time (they are cached); the LR fits
take about 20 s per version.

Usage: python benchmarks/simulator_overview.py [--data simremc --data simremc@1.2] [--tasks E003,E116]
           [--table 1.2=chrombench-out/rm56-12/results] [--quick] [--per-task]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TABLES = {"1.1": ROOT / "leaderboards/roadmap56-simremc/zoo",
                  "1.2": ROOT / "leaderboards/roadmap56-simremc-1.2/zoo"}  # its columns as they land


def versus_published(measured: dict[str, float], published: dict[str, float]) -> str:
    from scipy.stats import spearmanr

    tasks = sorted(set(measured) & set(published))
    if not tasks:
        return "—"
    m = np.array([measured[t] for t in tasks])
    p = np.array([published[t] for t in tasks])
    rho = spearmanr(m, p)[0] if len(tasks) > 2 else float("nan")
    return f"{np.mean(m - p):+.3f} mean, {np.mean(np.abs(m - p)):.3f} |mean|, rho {rho:.2f} ({len(tasks)} tasks)"


def simulate_column(data: str, eids: list[str], seed: int, quick: bool, per_task: bool) -> dict:
    """Ceiling and LR per task, computed here."""
    from chrombench.baselines.classical import LogisticRegressionModel
    from chrombench.data.load import load_task
    from chrombench.evaluate import auroc

    oracle, lr = {}, {}
    version = "?"
    for eid in eids:
        d = load_task(eid, data, seed=seed, quick=quick)
        version = d.dataset.version
        model = LogisticRegressionModel().fit(d.train, d.valid)
        oracle[eid] = float(d.truth.oracle_auroc)
        lr[eid] = float(auroc(np.asarray(d.test.y), model.predict_proba(d.test.X)[:, 1]))
        if per_task:
            print(f"  {data} {eid}: oracle {oracle[eid]:.3f}  LR {lr[eid]:.3f}", flush=True)
    return {"version": version, "oracle": oracle, "lr": lr}


def table_column(table: Path, eids: list[str]) -> dict:
    """DeepChrome per task, the zoo's spread and the relations, read from a table's records."""
    from chrombench import results
    from chrombench.leaderboard import verdict
    from chrombench.leaderboard.collect import collect

    board = collect(results.read_records(table), n_boot=0)
    if not board.sections:
        return {}
    s = board.sections[0]
    tasks = [t for t in s.complete_tasks if t in eids]
    cols = [s.tasks.index(t) for t in tasks]
    means = {m: float(np.mean(s.matrix[i, cols])) for i, m in enumerate(s.models)}
    ranked = sorted(means.values(), reverse=True)
    dc = {}
    if verdict.REFERENCE_MODEL in s.models:
        row = s.matrix[s.models.index(verdict.REFERENCE_MODEL)]
        dc = {t: float(row[s.tasks.index(t)]) for t in tasks}
    calibrated = verdict.calibrated_relations(s) or ()  # the page's own answer (1.2's CALIBRATED_RELATIONS)
    rel = {r.relation.id: r for r in verdict.measured_relations(s) if r.relation.counted}
    cal = [r for i, r in rel.items() if i in calibrated]
    held = [r for i, r in rel.items() if i not in calibrated]
    return {
        "deepchrome": dc,
        "spread": f"{ranked[0] - ranked[-1]:.3f} over {len(ranked)} models, top-5 {ranked[0] - ranked[min(4, len(ranked) - 1)]:.3f}",
        "calibrated": f"{sum(r.agrees for r in cal)} of {len(cal)}" if calibrated else "none calibrated on",
        "held_out": f"{sum(r.agrees for r in held)} of {len(held)}"
                    + (f" (missing: {', '.join(sorted(set(calibrated) - set(rel)))})" if set(calibrated) - set(rel) else ""),
        "tasks": len(tasks),
    }


def main(argv=None) -> int:
    from chrombench.tasks import all_specs

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", action="append", help="simulator version, repeatable (default: simremc and simremc@1.2)")
    parser.add_argument("--tasks", default=None, help="comma-separated EIDs (default: all 56)")
    parser.add_argument("--seed", type=int, default=0, help="simulator seed")
    parser.add_argument("--quick", action="store_true", help="the quick suite's gene subsample (2000 test genes)")
    parser.add_argument("--table", action="append", default=[], metavar="VERSION=DIR",
                        help="a roadmap56 table's records for a version (default: the shipped bundles of 1.1 and 1.2)")
    parser.add_argument("--per-task", action="store_true", help="print each task's oracle and LR as they come")
    args = parser.parse_args(argv)
    datas = args.data or ["simremc", "simremc@1.2"]
    tables = dict(DEFAULT_TABLES)
    for spec in args.table:
        version, _, folder = spec.partition("=")
        if not folder or not Path(folder).exists():
            parser.error(f"--table {spec!r}: expected VERSION=DIR with an existing folder")
        tables[version] = Path(folder)
    specs = all_specs()
    eids = args.tasks.split(",") if args.tasks else sorted(specs)
    unknown = [e for e in eids if e not in specs]
    if unknown:
        parser.error(f"unknown task(s) {', '.join(unknown)}; tasks are {', '.join(sorted(specs))}")
    published = {e: specs[e].reported_deepchrome_auroc for e in eids}

    columns = []
    for data in datas:
        col = simulate_column(data, eids, args.seed, args.quick, args.per_task)
        base = col["version"].split("+")[0]  # "1.1+seed0" -> "1.1"
        table = tables.get(base) if tables.get(base) and tables[base].exists() else None
        col["table"] = table_column(table, eids) if table and not args.quick else {}
        col["table_dir"] = table
        columns.append(col)

    def line(label: str, values: list[str]) -> None:
        print(f"{label:38s}" + "".join(f"{v:58s}" for v in values))

    print(f"\n{len(eids)} tasks, simulated (simremc), {'quick' if args.quick else 'full'} size, simulator seed {args.seed}")
    line("", [f"simremc {c['version']}" for c in columns])
    line("mean ceiling (oracle AUROC)", [
        f"{np.mean(list(c['oracle'].values())):.3f} ({min(c['oracle'].values()):.3f} - {max(c['oracle'].values()):.3f})"
        for c in columns])
    line("LR vs published DeepChrome", [versus_published(c["lr"], published) for c in columns])
    notable = "no roadmap56 table on this version yet"
    line("DeepChrome vs published", [versus_published(c["table"]["deepchrome"], published) if c["table"].get("deepchrome")
                                     else notable for c in columns])
    line("zoo spread (best - worst)", [c["table"].get("spread", notable) for c in columns])
    line("relations reproduced: calibrated", [c["table"].get("calibrated", "—") for c in columns])
    line("relations reproduced: held out", [c["table"].get("held_out", "—") for c in columns])
    line("room: ceiling - published DeepChrome",
         [f"{np.mean([c['oracle'][e] - published[e] for e in eids]):+.3f}" for c in columns])
    for c in columns:
        if c["table_dir"]:
            print(f"table for {c['version']}: {c['table_dir']} ({c['table'].get('tasks', 0)} complete tasks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
