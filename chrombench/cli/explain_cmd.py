"""``chrombench explain``: interpret a saved model, and score the interpretation when truth is known."""

from __future__ import annotations

import click

from .options import device_option

from ..explain.methods import METHODS


@click.command()
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("input_csv", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("-t", "--task", default=None, help="Explain this task's test split instead of INPUT_CSV; on simulated "
              "tasks the interpretation is also scored against the planted truth.")
@click.option("--data", "dataset", default=None, help="Dataset of --task (default simremc).")
@click.option("--quick", is_flag=True, help="Use the quick suite's gene subsample of --task.")
@click.option("-m", "--method", "methods", multiple=True, type=click.Choice(METHODS),
              help="Repeatable; default: every method the model supports.")
@click.option("--hactive", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Activity track (gene_id then one value per bin, 100 for the archive, e.g. H3K27ac): report the Pearson r "
                   "between H3K4me3 bin scores and it, over genes predicted ON (the paper's protocol on real data).")
@click.option("--genes", type=click.IntRange(min=1), default=None,
              help="Explain only this many genes (a label-stratified sample when the genes have labels).")
@click.option("--steps", type=click.IntRange(min=1), default=16, show_default=True,
              help="Integrated-gradients path steps; the completeness gap printed tells whether they suffice.")
@device_option(help="Where a neural model computes.")
@click.option("--latent-task", "latent_tasks", multiple=True, metavar="TASK",
              help="Models with a latent space (hm-crnn): also embed these tasks' test genes with --task's, as one "
                   "PCA coloured by cell type and by label (latent_cell_types.png). Repeatable.")
@click.option("--trust-code", is_flag=True, help="Load a model whose class is third-party code (its code is run).")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
def explain(model_dir, input_csv, task, dataset, quick, methods, hactive, genes, steps, device, latent_tasks, trust_code,
            out_dir):
    """Attention maps, saliency, integrated gradients or importances for MODEL_DIR.

    \b
    Writes per method: <method>_cells.parquet (gene, mark, bin, score), <method>_marks.csv
    (gene, mark, score), mean ON/OFF profiles per mark, per-mark bars and per-gene heatmaps (PNG);
    with a simulated --task also scores.csv: how well each method recovers the planted
    (mark, bin) importance (cell AUROC, precision at k, mark rank correlation) next to a random
    baseline.

    \b
    Examples:
      chrombench explain models/ac E003-test.csv -o explain/
      chrombench explain models/ac -t E003 -o explain/            # scored against the simulator's truth
      chrombench explain models/ac genes.csv --hactive h3k27ac.csv -o explain/
      chrombench explain models/hmcrnn -t E003 --latent-task E112 --latent-task E123 -o explain/
    """
    from ..data.csvformat import read_unlabelled
    from ..data.load import load_task
    from ..errors import ChrombenchError
    from ..explain.report import explain_split, read_hactive
    from ..models.io import load_model

    if (input_csv is None) == (task is None):
        raise click.UsageError("give either INPUT_CSV or --task")
    model = load_model(model_dir, trust_code=trust_code, device=device)
    truth = None
    if task:
        data = load_task(task, dataset, quick=quick)
        split, truth = data.test, data.truth
    else:
        split = read_unlabelled(input_csv)
    import numpy as np

    if genes is not None and genes < len(split):
        from ..data.csvformat import UNLABELLED
        from ..engine.interpret import stratified_subsample

        labels = np.asarray(split.y)
        idx = stratified_subsample(np.zeros_like(labels) if (labels == UNLABELLED).any() else labels, genes)
        split = split.subset(idx)
        if truth is not None:
            truth = truth.subset(idx)
    activity = read_hactive(hactive, list(split.gene_ids), split.shape[0]) if hactive else None  # bad rows: file and line
    try:
        summary = explain_split(model, split, out_dir, list(methods) or None, truth=truth, hactive=activity,
                               steps=steps, progress=True)
    except ValueError as exc:
        raise ChrombenchError(str(exc)) from exc
    for method, info in summary["methods"].items():
        line = f"{method:<22} {info['seconds']:6.2f} s"
        if "scores" in info:
            s = info["scores"]
            line += f"  cell AUROC {s['cell_auroc']:.3f}  precision@k {s['precision_at_n_true']:.3f}  mark rho {s['mark_spearman']:.3f}"
        if "hactive" in info:
            line += f"  H3K4me3 vs activity r={info['hactive']['pearson_mean']:.3f} (n={info['hactive']['n_genes']})"
        if "completeness_gap" in info:
            gap = info["completeness_gap"]["median"]
            line += f"  completeness gap {gap:.1%}"
            if gap > 0.05:
                line += f" (over 5%: try --steps {steps * 4})"
        click.echo(line)
    if truth is not None:
        r = summary["random_baseline"]
        click.echo(f"{'random baseline':<22} {'':>8}  cell AUROC {r['cell_auroc']:.3f}  precision@k "
                   f"{r['precision_at_n_true']:.3f}  mark rho {r['mark_spearman']:.3f}")
    if latent_tasks:
        from pathlib import Path

        from ..explain.report import write_latent_by_cell_type
        from ..models.contract import explains_of

        if "latent" not in explains_of(type(model)):
            raise ChrombenchError(f"--latent-task: {type(model).__name__} has no latent space (hm-crnn has)")
        if not task:
            raise click.UsageError("--latent-task goes with --task (the first cell type of the plot)")
        splits = {task: split}
        for t in latent_tasks:
            other = load_task(t, dataset, quick=quick).test
            if genes is not None and genes < len(other):  # as many genes as --task's, sampled the same way
                from ..engine.interpret import stratified_subsample

                other = other.subset(stratified_subsample(np.asarray(other.y), genes))
            splits[t] = other
        info = write_latent_by_cell_type(model, splits, Path(out_dir))
        click.echo(f"latent space of {info['genes']} genes over {len(splits)} cell types: {out_dir}/latent_cell_types.png")
    click.echo(f"wrote {summary['n_genes']} genes x {len(summary['methods'])} methods to {out_dir}")
