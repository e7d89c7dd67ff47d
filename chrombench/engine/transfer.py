"""Cross-cell-type transfer: a model fitted on cell type A, tested on cell type B, for every pair.

``zero-shot``: one fit per source task (its train split, its valid split for early stopping), each
applied to every target's test split. The diagonal is the ordinary within-task result.

``fine-tune`` (TransferChrome's setting): for each target B, a model pretrained on the pooled train
splits of every other task (early stopping on their pooled valid splits), then trained on B's train
split (early stopping on B's valid split) from those weights. Reported per target beside the model
fitted on B alone (scratch) and the pretrained model applied to B as it is (pooled, zero-shot).

Either way test labels stay out of reach while any model fits: every task is sealed during the fits,
and the targets' test splits are loaded only once all fits are done (the protocol's rule, extended
to B).
"""

from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import dataclass, field

import numpy as np

from ..data.layout import SIMREMC
from ..data.load import load_task, resolve_task
from ..data.arrays import Split
from ..errors import ChrombenchError
from ..evaluate import auroc
from ..models.registry import canonical, get_model_class
from . import evaluation

MODES = ("zero-shot", "fine-tune")


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


def transfer_matrix(model: str, tasks: list[str], dataset: str = SIMREMC, genes: dict | None = None,
                    seed: int = 0, device: str | None = "auto", progress=None) -> TransferResult:
    """The zero-shot AUROC matrix of ``model`` (its defaults) over ``tasks``; ``progress(text)`` is told
    each step."""
    cls = get_model_class(model)
    refs = [resolve_task(t, dataset) for t in tasks]
    say = progress or (lambda text: None)
    views, fitted, seconds, training, hashes = {}, {}, {}, {}, {}
    with contextlib.ExitStack() as seals:
        for ds, task in refs:  # train/valid in memory, then the task sealed: no test split while fitting
            views[task] = evaluation.TuningView.of(load_task(task, ds, genes=genes))
            hashes[task] = views[task].dataset.content_hash
            seals.enter_context(evaluation.sealed_test(ds, task))
        for k, (ds, task) in enumerate(refs):
            view = views.pop(task)
            say(f"fit {k + 1}/{len(refs)}: {task}")
            m = cls(**evaluation.fixed_params(cls, seed, device))
            t0 = time.perf_counter()
            evaluation.fit_sealed(m, view)
            seconds[task] = time.perf_counter() - t0
            training[task] = evaluation.training_report(m)
            fitted[task] = m
    matrix = np.full((len(refs), len(refs)), np.nan)
    for j, (ds, target) in enumerate(refs):  # only now, after every fit: the targets' test splits
        say(f"test {j + 1}/{len(refs)}: {target}")
        test = load_task(target, ds, genes=genes).test
        for i, (_, source) in enumerate(refs):
            matrix[i, j] = auroc(test.y, evaluation.predict_on(fitted[source], test))
    return TransferResult(model=canonical(model), dataset=refs[0][0], tasks=[t for _, t in refs], auroc=matrix,
                          fit_seconds=seconds, training=training, content_hashes=hashes)


@dataclass
class FineTuneResult:
    model: str
    dataset: str
    tasks: list[str]  # the targets
    auroc: dict  # target -> {"scratch": AUROC, "pooled": AUROC, "fine-tuned": AUROC}
    fit_seconds: dict = field(default_factory=dict)  # target -> {"scratch", "pretrain", "fine-tune"}
    training: dict = field(default_factory=dict)  # target -> {fit: how it ended}
    content_hashes: dict = field(default_factory=dict)
    folds: list = field(default_factory=list)  # the target groups, each pretrained once (one each: leave-one-out)

    def mean(self, kind: str) -> float:
        return float(np.mean([self.auroc[t][kind] for t in self.tasks]))


def pooled(splits: list[Split], tasks: list[str]) -> Split:
    """Several tasks' splits as one (gene ids prefixed with their task, so none collide)."""
    marks = {sp.marks for sp in splits}
    if len({sp.shape for sp in splits}) > 1 or len(marks) > 1:
        from ..errors import ChrombenchError

        raise ChrombenchError("tasks pooled for pretraining must share marks and bins; got "
                              + ", ".join(f"{t}: {sp.shape[0]} bins x {', '.join(sp.marks)}" for t, sp in zip(tasks, splits)))
    ids = np.concatenate([np.char.add(f"{t}:", np.asarray(sp.gene_ids).astype(str)) for t, sp in zip(tasks, splits)])
    return Split(ids, np.concatenate([np.asarray(sp.X) for sp in splits]),
                 np.concatenate([np.asarray(sp.y) for sp in splits]), splits[0].marks)


def target_folds(tasks: list[str], folds: int | None) -> list[list[str]]:
    """Targets grouped for pretraining: one per target (None, TransferChrome's leave-one-out), or
    ``folds`` groups dealt round-robin, each pretrained once on every task outside it."""
    if folds is None or folds >= len(tasks):
        return [[t] for t in tasks]
    return [tasks[k::folds] for k in range(folds)]


def fine_tune_table(model: str, tasks: list[str], dataset: str = SIMREMC, genes: dict | None = None,
                    seed: int = 0, device: str | None = "auto", progress=None, folds: int | None = None) -> FineTuneResult:
    """For each target: scratch, pooled (pretrained on the others) and fine-tuned test AUROC. ``folds``:
    pretrain once per fold of targets (on every task outside the fold) instead of once per target."""
    from ..errors import ChrombenchError

    cls = get_model_class(model)
    if not getattr(cls, "fine_tunes", False):
        raise ChrombenchError(f"{canonical(model)} cannot be fine-tuned (it does not go on training from fitted "
                              "weights); fine-tune mode takes a neural model, e.g. attentivechrome or deepchrome")
    refs = [resolve_task(t, dataset) for t in tasks]
    names = [t for _, t in refs]
    say = progress or (lambda text: None)
    views, hashes, models, seconds, training = {}, {}, {}, {}, {}

    def fit(train, valid, kind, target, base=None):
        m = base if base is not None else cls(**evaluation.fixed_params(cls, seed, device))
        t0 = time.perf_counter()
        try:
            (m.fine_tune if base is not None else m.fit)(train, valid)
        except SystemExit as exc:
            raise ChrombenchError(f"model {cls.__name__} called sys.exit({exc.code!r}) in fit; a model must return "
                                  "from fit or raise an exception") from None
        seconds.setdefault(target, {})[kind] = time.perf_counter() - t0
        training.setdefault(target, {})[kind] = evaluation.training_report(m)
        return m

    with contextlib.ExitStack() as seals:
        for ds, task in refs:
            views[task] = evaluation.TuningView.of(load_task(task, ds, genes=genes))
            hashes[task] = views[task].dataset.content_hash
            seals.enter_context(evaluation.sealed_test(ds, task))
        groups = target_folds(names, folds)
        for k, group in enumerate(groups):
            others = [t for t in names if t not in group]
            say(f"pretraining {k + 1}/{len(groups)} on {len(others)} tasks, for {', '.join(group)}")
            pre = fit(pooled([views[t].train for t in others], others),
                      pooled([views[t].valid for t in others], others), "pretrain", group[0])
            for target in group:
                say(f"  {target}: fit on it alone, fine-tune the pretrained model on it")
                if target != group[0]:  # one pretraining serves the fold: its time and ending are the same
                    seconds.setdefault(target, {})["pretrain"] = seconds[group[0]]["pretrain"]
                    training.setdefault(target, {})["pretrain"] = training[group[0]]["pretrain"]
                scratch = fit(views[target].train, views[target].valid, "scratch", target)
                tuned = fit(views[target].train, views[target].valid, "fine-tune", target, base=copy.deepcopy(pre))
                models[target] = {"scratch": scratch, "pooled": pre, "fine-tuned": tuned}
    table = {}
    for (ds, target) in refs:  # only now, after every fit: the targets' test splits
        test = load_task(target, ds, genes=genes).test
        table[target] = {kind: auroc(test.y, evaluation.predict_on(m, test))
                         for kind, m in models[target].items()}
    return FineTuneResult(model=canonical(model), dataset=refs[0][0], tasks=names, auroc=table,
                          fit_seconds=seconds, training=training, content_hashes=hashes,
                          folds=[list(g) for g in target_folds(names, folds)])


def write_fine_tune_outputs(result: FineTuneResult, out) -> list:
    """``transfer.csv`` (target, kind, AUROC), ``transfer.json`` and ``transfer.png`` (bars per target)."""
    import json
    from pathlib import Path

    from ..atomic import atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    kinds = ("scratch", "pooled", "fine-tuned")
    rows = ["target,kind,test_auroc"] + [f"{t},{k},{result.auroc[t][k]!r}" for t in result.tasks for k in kinds]
    atomic_write_text(out / "transfer.csv", "\n".join(rows) + "\n")
    atomic_write_text(out / "transfer.json", json.dumps({
        "model": result.model, "dataset": result.dataset, "mode": "fine-tune", "tasks": result.tasks,
        "means": {k: result.mean(k) for k in kinds}, "auroc": result.auroc, "folds": result.folds,
        "fit_seconds": result.fit_seconds,
        "training": result.training, "content_hashes": result.content_hashes}, indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(result.tasks)
    fig, ax = plt.subplots(figsize=(max(7.0, 0.9 * n + 4), 3.8))
    x = np.arange(n)
    for i, (kind, colour) in enumerate(zip(kinds, ("#7f8c8d", "#2980b9", "#c0392b"))):
        ax.bar(x + (i - 1) * 0.27, [result.auroc[t][kind] for t in result.tasks], 0.27, color=colour,
               label=f"{kind} (mean {result.mean(kind):.3f})")
    values = [result.auroc[t][k] for t in result.tasks for k in kinds]
    ax.set_ylim(max(0.0, min(values) - 0.05), min(1.0, max(values) + 0.03))
    ax.set_xticks(x, result.tasks, rotation=90 if n > 12 else 0)
    ax.set_ylabel("test AUROC")
    fig.suptitle(f"{result.model}: trained on the target alone, pretrained on the other tasks,\n"
                 "and pretrained then fine-tuned on the target", fontsize=9)
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(out / "transfer.png", dpi=110)
    plt.close(fig)
    return [out / "transfer.csv", out / "transfer.json", out / "transfer.png"]


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
