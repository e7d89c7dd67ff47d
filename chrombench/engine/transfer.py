"""Cross-cell-type transfer: a model fitted on cell type A, tested on cell type B, for every pair.

``zero-shot``: one fit per source task (its train split, its valid split for early stopping), each
applied to every target's test split. The diagonal is the ordinary within-task result. Test labels
stay out of reach while any model fits: every task of the matrix is sealed during the fits, and the
targets' test splits are loaded only once all fits are done (the protocol's rule, extended to B).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import numpy as np

from ..data import store
from ..evaluate import auroc
from ..models.registry import canonical, get_model_class
from . import protocol

MODES = ("zero-shot",)


@dataclass
class TransferResult:
    model: str
    dataset: str
    tasks: list[str]
    auroc: np.ndarray  # [source, target]
    fit_seconds: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)  # source -> how its fit ended
    content_hashes: dict = field(default_factory=dict)

    @property
    def diagonal_mean(self) -> float:
        return float(np.mean(np.diag(self.auroc)))

    @property
    def off_diagonal_mean(self) -> float:
        n = len(self.tasks)
        if n < 2:
            return float("nan")
        return float(self.auroc[~np.eye(n, dtype=bool)].mean())


def transfer_matrix(model: str, tasks: list[str], dataset: str = store.SIMREMC, genes: dict | None = None,
                    seed: int = 0, device: str | None = "auto", progress=None) -> TransferResult:
    """The zero-shot AUROC matrix of ``model`` (its defaults) over ``tasks``; ``progress(text)`` is told
    each step."""
    cls = get_model_class(model)
    refs = [store.resolve_task(t, dataset) for t in tasks]
    say = progress or (lambda text: None)
    views, fitted, seconds, training, hashes = {}, {}, {}, {}, {}
    with contextlib.ExitStack() as seals:
        for ds, task in refs:  # train/valid in memory, then the task sealed: no test split while fitting
            views[task] = protocol.TuningView.of(store.load_task(task, ds, genes=genes))
            hashes[task] = views[task].dataset.content_hash
            seals.enter_context(protocol.sealed_test(ds, task))
        for k, (ds, task) in enumerate(refs):
            view = views.pop(task)
            say(f"fit {k + 1}/{len(refs)}: {task}")
            m = cls(**protocol.fixed_params(cls, seed, device))
            t0 = time.perf_counter()
            m.fit(view.train, view.valid)
            seconds[task] = time.perf_counter() - t0
            training[task] = protocol.training_report(m)
            fitted[task] = m
    matrix = np.full((len(refs), len(refs)), np.nan)
    for j, (ds, target) in enumerate(refs):  # only now, after every fit: the targets' test splits
        say(f"test {j + 1}/{len(refs)}: {target}")
        test = store.load_task(target, ds, genes=genes).test
        for i, (_, source) in enumerate(refs):
            matrix[i, j] = auroc(test.y, np.asarray(fitted[source].predict_proba(test.X), dtype=np.float64)[:, 1])
    return TransferResult(model=canonical(model), dataset=refs[0][0], tasks=[t for _, t in refs], auroc=matrix,
                          fit_seconds=seconds, training=training, content_hashes=hashes)


def write_outputs(result: TransferResult, out) -> list:
    """``transfer.csv`` (source, target, AUROC), ``transfer.json`` and ``transfer.png`` (heatmap,
    diagonal outlined) into ``out``."""
    import json
    from pathlib import Path

    from ..atomic import atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = ["source,target,test_auroc"] + [f"{s},{t},{result.auroc[i, j]!r}" for i, s in enumerate(result.tasks)
                                           for j, t in enumerate(result.tasks)]
    atomic_write_text(out / "transfer.csv", "\n".join(rows) + "\n")
    atomic_write_text(out / "transfer.json", json.dumps({
        "model": result.model, "dataset": result.dataset, "mode": "zero-shot", "tasks": result.tasks,
        "diagonal_mean": result.diagonal_mean, "off_diagonal_mean": result.off_diagonal_mean,
        "fit_seconds": result.fit_seconds, "training": result.training, "content_hashes": result.content_hashes,
        "auroc": result.auroc.tolist()}, indent=2))
    _heatmap(result, out / "transfer.png")
    return [out / "transfer.csv", out / "transfer.json", out / "transfer.png"]


def _heatmap(result: TransferResult, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    n = len(result.tasks)
    size = max(4.0, min(16.0, 0.28 * n + 2.5))
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    im = ax.imshow(result.auroc, cmap="viridis", aspect="equal")
    for k in range(n):  # the diagonal: trained and tested on the same cell type
        ax.add_patch(Rectangle((k - 0.5, k - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.2))
    ticks = range(n)
    ax.set_xticks(ticks, result.tasks, rotation=90, fontsize=7 if n > 12 else 9)
    ax.set_yticks(ticks, result.tasks, fontsize=7 if n > 12 else 9)
    ax.set_xlabel("tested on (target)")
    ax.set_ylabel("trained on (source)")
    ax.set_title(f"{result.model}, zero-shot transfer: test AUROC\n(diagonal mean {result.diagonal_mean:.3f}, "
                 f"off-diagonal {result.off_diagonal_mean:.3f}; red: same cell type)", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
