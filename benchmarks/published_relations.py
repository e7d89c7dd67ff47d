"""How many published same-data relations (chrombench/leaderboard/published_relations.tsv) a table
reproduces in direction.

Reads summary records (no validation, no bootstrap: seconds), builds the same section the page shows,
and prints each relation published vs measured, then the agreement count.

    python benchmarks/published_relations.py [--results leaderboards/roadmap56-simremc/zoo]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from chrombench import results
from chrombench.leaderboard import verdict
from chrombench.leaderboard.collect import collect

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, action="append",
                    help="folders of records (repeatable); default: the shipped roadmap56 bundles")
    args = ap.parse_args()
    roots = args.results or [ROOT / "leaderboards/roadmap56-simremc/zoo"]
    board = collect(results.read_records(*roots), n_boot=0)
    for s in board.sections:
        print(f"== {s.dataset} {s.version} ({len(s.models)} models x {len(s.tasks)} tasks)")
        for r in verdict.relation_rows(s):
            print(f"  {r['relation']:32s} published {r['published']:18s} wins {r['published_wins']:6s} | "
                  f"measured {r['measured']:18s} wins {r['measured_wins']:6s} | {r['verdict']}")
        agree, counted = verdict.agreement(s)
        print(f"  agreement: {agree} of {counted} counted relations reproduced in direction")


if __name__ == "__main__":
    main()
