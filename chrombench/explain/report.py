"""Explain a model on a set of genes: tidy tables, plots and (when truth is known) scores."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .. import N_BINS
from ..data.arrays import Split
from ..models.contract import explains_of
from . import plots
from .methods import available_methods, explain
from .scoring import activity_correlation, random_baseline, score_by_mechanism, score_interpretation



def write_tables(out: Path, method: str, split: Split, cells: np.ndarray, marks: np.ndarray, probs: np.ndarray,
                 attention: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """Tidy per-(gene, mark, bin) and per-(gene, mark) tables; parquet when pyarrow is there.

    For attention, the cell table also carries alpha and the mark table beta, unmixed.
    """
    n = len(split)
    n_bins, names = split.shape[0], np.array(split.marks)
    genes = np.asarray(split.gene_ids).astype(str)
    cell_df = pd.DataFrame({
        "gene_id": np.repeat(genes, len(names) * n_bins),
        "mark": np.tile(np.repeat(names, n_bins), n),
        "bin": np.tile(np.arange(1, n_bins + 1), n * len(names)),
        "score": cells.reshape(-1).astype(np.float32),
    })
    mark_df = pd.DataFrame({"gene_id": np.repeat(genes, len(names)), "mark": np.tile(names, n),
                            "score": marks.reshape(-1).astype(np.float32),
                            "probability": np.repeat(probs, len(names))})
    if attention is not None:
        cell_df["alpha"] = np.asarray(attention[0], np.float32).reshape(-1)
        mark_df["beta"] = np.asarray(attention[1], np.float32).reshape(-1)
    files = {}
    try:
        cell_path = out / f"{method}_cells.parquet"
        cell_df.to_parquet(cell_path, index=False)
    except ImportError:  # pragma: no cover - pyarrow ships with mlflow, but stay usable without it
        cell_path = out / f"{method}_cells.csv.gz"
        cell_df.to_csv(cell_path, index=False)
    files["cells"] = cell_path.name
    mark_df.to_csv(out / f"{method}_marks.csv", index=False)
    files["marks"] = f"{method}_marks.csv"
    return files


def explain_split(model, split: Split, out: str | Path, methods: list[str] | None = None, truth=None,
                  hactive: np.ndarray | None = None, heatmaps: int = 6, steps: int = 16,
                  progress: bool = False) -> dict:
    """Run each method on ``split``; write tables and plots into ``out``; return a summary dict."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    methods = methods or available_methods(model)
    probs = model.predict_proba(split.X)[:, 1]
    on = probs >= 0.5
    summary = {"n_genes": len(split), "methods": {}, "ig_steps": steps}
    for method in methods:
        t0 = time.perf_counter()
        diagnostics: dict = {}
        cells, marks = explain(model, split.X, method, steps=steps, progress=progress, diagnostics=diagnostics)
        elapsed = time.perf_counter() - t0
        attention = (diagnostics["alpha"], diagnostics["beta"]) if method == "attention" else None
        info = {"seconds": elapsed, "files": write_tables(out, method, split, cells, marks, probs, attention)}
        if "completeness_gap" in diagnostics:
            gap = diagnostics["completeness_gap"]
            info["completeness_gap"] = {"median": float(np.median(gap)), "p90": float(np.quantile(gap, 0.9)),
                                        "steps": steps}
        name = method.replace("-", "_")
        ylabel = "alpha x beta" if method == "attention" else "score"
        files = [plots.profiles_by_class(cells, on, out / f"{name}_profiles.png",
                                         f"{method}: mean per-bin score, genes predicted ON vs OFF", ylabel, split.marks),
                 plots.mark_scores_by_class(marks, on, out / f"{name}_marks.png", f"{method}: per-mark score",
                                            split.marks),
                 plots.gene_heatmaps(cells, split.gene_ids, probs, out / f"{name}_genes.png", f"{method}: per-gene maps",
                                     n=heatmaps, marks=split.marks)]
        if attention is not None:
            alpha, beta = attention
            files.append(plots.profiles_by_class(np.asarray(alpha), on, out / "alpha_profiles.png",
                                                 "alpha: bin attention per mark, ON vs OFF", "mean alpha", split.marks))
            files.append(plots.mark_scores_by_class(np.asarray(beta), on, out / "beta_marks.png", "beta: mark attention",
                                                    split.marks))
        info["plots"] = [p.name for p in files]
        if truth is not None:
            info["scores"] = score_interpretation(cells, np.asarray(truth.importance))
            if truth.mechanisms:
                info["scores_by_mechanism"] = score_by_mechanism(cells, truth.mechanisms)
        if hactive is not None:
            if "H3K4me3" not in split.marks:
                from ..errors import ChrombenchError

                raise ChrombenchError(f"--hactive correlates H3K4me3 scores with activity, and this task's marks are "
                                      f"{', '.join(split.marks)}")
            info["hactive"] = activity_correlation(cells[:, list(split.marks).index("H3K4me3")], hactive, on)
        summary["methods"][method] = info
    if "latent" in explains_of(type(model)):
        summary["latent"] = write_latent(model, split, out)
    if callable(getattr(model, "patterns", None)):  # PatternChrome: which patterns, on which mark, where
        summary["patterns"] = model.patterns()
        pd.DataFrame(summary["patterns"]).to_csv(out / "patterns.csv", index=False)
    if truth is not None:
        summary["random_baseline"] = random_baseline(np.asarray(truth.importance))
        table = {m: v["scores"] for m, v in summary["methods"].items()}
        table["random"] = summary["random_baseline"]
        plots.method_comparison(table, out / "scores.png", "interpretation vs planted truth")
        pd.DataFrame(table).T.to_csv(out / "scores.csv", index_label="method")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def read_hactive(path: str | Path, gene_ids, n_bins: int = N_BINS) -> np.ndarray:
    """An activity track: one row per gene, ``gene_id`` then one value per bin (``n_bins``, the task's;
    100 for the archive) (CSV, no header).

    Values are non-negative numbers (read counts or signal); every problem is reported with the file
    and line, as for the archive format.
    """
    import csv

    from ..errors import DataFormatError

    path = Path(path)

    def fail(line: int, msg: str):
        raise DataFormatError(f"{path}, line {line}: {msg}")

    table: dict[str, np.ndarray] = {}
    first_line: dict[str, int] = {}
    with open(path, newline="") as fh:
        for line, row in enumerate(csv.reader(fh), 1):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != n_bins + 1:
                fail(line, f"found {len(row)} columns, expected {n_bins + 1} (gene_id then {n_bins} bin values)")
            gene = row[0]
            if not gene:
                fail(line, "missing gene_id")
            if gene in table:
                fail(line, f"duplicate gene {gene!r} (first seen at line {first_line[gene]})")
            try:
                values = np.array([float(v) for v in row[1:]])
            except ValueError:
                bad = next(v for v in row[1:] if not _is_number(v))
                what = "missing value" if not bad.strip() else f"not a number: {bad!r}"
                fail(line, f"{what} (a header row? the file has none)" if line == 1 else what)
            if not np.isfinite(values).all():
                fail(line, f"bin {int(np.flatnonzero(~np.isfinite(values))[0]) + 1} is not finite")
            if (values < 0).any():
                fail(line, f"bin {int(np.flatnonzero(values < 0)[0]) + 1} is negative: {values[values < 0][0]:g}")
            table[gene], first_line[gene] = values, line
    if not table:
        raise DataFormatError(f"{path}: the file is empty (no genes)")
    missing = [g for g in gene_ids if g not in table]
    if missing:
        raise DataFormatError(f"{path}: no activity row for {len(missing)} genes, e.g. {missing[0]!r}")
    return np.stack([table[g] for g in gene_ids])


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _first_components(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first two principal components of ``Z`` and the share of variance each explains."""
    centred = Z - Z.mean(axis=0)
    _, sing, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T, (sing ** 2 / max((sing ** 2).sum(), 1e-300))[:2]


def write_latent_by_cell_type(model, splits: dict[str, Split], out: Path) -> dict:
    """Genes of several cell types in one latent space: ``latent_cell_types.csv`` (task, gene_id,
    label, z0..) and ``latent_cell_types.png``, the first two principal components of all of them,
    coloured by cell type and, beside it, by label. Does the space separate cell types, or expression?"""
    parts = {task: np.asarray(model.latent(sp.X), dtype=np.float64) for task, sp in splits.items()}
    Z = np.concatenate(list(parts.values()))
    tasks = np.concatenate([[t] * len(z) for t, z in parts.items()])
    labels = np.concatenate([np.asarray(sp.y) for sp in splits.values()])
    frame = pd.DataFrame(Z, columns=[f"z{k}" for k in range(Z.shape[1])])
    frame.insert(0, "label", labels)
    frame.insert(0, "gene_id", np.concatenate([np.asarray(sp.gene_ids).astype(str) for sp in splits.values()]))
    frame.insert(0, "task", tasks)
    frame.to_csv(out / "latent_cell_types.csv", index=False)
    pcs, share = _first_components(Z)
    plots.latent_by_group(pcs, tasks, labels, share, out / "latent_cell_types.png",
                          f"{type(model).__name__} latent space over {len(splits)} cell types")
    return {"tasks": list(splits), "genes": int(len(Z)), "pca_explained_variance": [float(v) for v in share],
            "files": ["latent_cell_types.csv", "latent_cell_types.png"]}


def write_latent(model, split: Split, out: Path) -> dict:
    """A model's per-gene latent vectors (``latent(X)``, e.g. HM-CRNN's regulatory latent space) as
    ``latent.csv`` (gene_id, label, z0..) and their first two principal components as a scatter
    coloured by label (``latent_pca.png``); returns the explained variance of those components."""
    Z = np.asarray(model.latent(split.X), dtype=np.float64)
    labels = np.asarray(split.y)
    frame = pd.DataFrame(Z, columns=[f"z{k}" for k in range(Z.shape[1])])
    frame.insert(0, "label", labels)
    frame.insert(0, "gene_id", np.asarray(split.gene_ids).astype(str))
    frame.to_csv(out / "latent.csv", index=False)
    pcs, share = _first_components(Z)
    plots.latent_scatter(pcs, labels, share, out / "latent_pca.png",
                         f"{type(model).__name__} latent space: first two principal components")
    return {"dimensions": int(Z.shape[1]), "genes": int(Z.shape[0]),
            "pca_explained_variance": [float(v) for v in share], "files": ["latent.csv", "latent_pca.png"]}
