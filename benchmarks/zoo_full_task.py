"""Test AUROC and fit time of every zoo model at its default settings on one full-size task.

This is the model-zoo check that the issue asks for: every model fits a full-size split (6,601
training genes) with its own defaults (no tuning; neural models early-stop on validation AUROC),
and is scored once on the test split. The simulator's oracle AUROC (its latent signal, the ceiling
any model can reach) and the published DeepChrome AUROC for the cell type are printed beside them.
The numbers are on simulated data (``simremc``) unless ``--data`` names a real dataset; the data's
name, version and content hash are printed with them.

Usage: python benchmarks/zoo_full_task.py [--task E003] [--data simremc] [--models a,b,...] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def main(argv=None) -> int:
    from chrombench.data.load import load_task
    from chrombench.evaluate import auroc
    from chrombench.models.registry import MODELS, make_model
    from chrombench.tasks import get_spec

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="E003")
    parser.add_argument("--data", default="simremc")
    parser.add_argument("--models", default=",".join(MODELS.names()))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    data = load_task(args.task, dataset=args.data)
    spec, ref = get_spec(args.task), data.dataset
    print(f"{ref.name} {ref.version} {args.task} (content sha256 {ref.content_hash[:12]}"
          f"{', SIMULATED' if ref.simulated else ''}): {len(data.train)} train / {len(data.valid)} valid / "
          f"{len(data.test)} test genes; published DeepChrome AUROC on the real data "
          f"{spec.reported_deepchrome_auroc}"
          + (f"; simulator's oracle AUROC {data.truth.oracle_auroc:.3f}" if data.truth is not None else ""))
    rows = []
    for name in args.models.split(","):
        model = make_model(name)
        if "seed" in model.get_params():
            model.set_params(seed=args.seed)
        start = time.perf_counter()
        model.fit(data.train, data.valid)
        fit_s = time.perf_counter() - start
        p = model.predict_proba(data.test.X)[:, 1]
        score = auroc(np.asarray(data.test.y), p)
        epochs = len((getattr(model, "history_", None) or {}).get("epochs", [])) or ""
        rows.append((name, score, fit_s, epochs))
        print(f"  {name:<32} test AUROC {score:.3f}   fit {fit_s:7.1f} s   {epochs and f'{epochs} epochs'}",
              flush=True)
    print()
    for name, score, fit_s, epochs in sorted(rows, key=lambda r: -r[1]):
        print(f"| {name} | {score:.3f} | {fit_s:.0f} s | {epochs} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
