"""``chrombench transfer``: train on one cell type, test on another, for every pair of tasks."""

from __future__ import annotations

from pathlib import Path

import click

from .options import device_option, suite_option


@click.command()
@click.option("-m", "--model", "model", required=True, metavar="MODEL",
              help="A zoo model (its defaults), alias or module:Class target.")
@click.option("-t", "--task", "tasks", multiple=True, metavar="TASK", help="Tasks of the matrix (repeatable).")
@suite_option(help="All tasks of this suite (at its genes unless --genes).")
@click.option("--all-tasks", is_flag=True, help="All 56 tasks (roadmap56's), at --genes (default: the quick sizes).")
@click.option("--genes", default=None, metavar="TRAIN,VALID,TEST", help="Subsample each split, e.g. 2000,1000,2000.")
@click.option("--data", "dataset", default="simremc", show_default=True)
@click.option("--mode", type=click.Choice(["zero-shot", "fine-tune"]), default="zero-shot", show_default=True,
              help="zero-shot: the model fitted on the source cell type, applied to the target's test split. "
                   "fine-tune: per target, pretrained on all the other tasks, then trained on the target's train "
                   "split (TransferChrome's setting), beside the target alone and the pretrained model as it is.")
@click.option("--folds", type=click.IntRange(2, None), default=None, metavar="K",
              help="fine-tune: pretrain once per fold of K target groups (on every task outside the fold) instead of "
                   "once per target (leave-one-out, TransferChrome's setting): K pretrainings instead of N.")
@click.option("--seed", type=int, default=0, show_default=True)
@device_option()
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
def transfer(model, tasks, suite, all_tasks, genes, dataset, mode, folds, seed, device, out_dir):
    """Train on one cell type, test on another.

    zero-shot: an N x N matrix of test AUROC, rows the cell type a model was trained on, columns the
    one it is tested on (the diagonal is the ordinary within-cell-type result); transfer.png is its
    heatmap, diagonal outlined. fine-tune: per target, test AUROC of the model trained on it alone,
    pretrained on the other tasks, and pretrained then fine-tuned on it (neural models; N pretraining
    fits on N-1 tasks' genes each); transfer.png shows the three side by side.

    Writes transfer.csv, transfer.json and transfer.png into OUT. Test splits stay out of reach while
    any model fits.

    \b
    Examples:
      chrombench transfer -m lr --suite quick -o transfer/
      chrombench transfer -m lr --all-tasks --genes 2000,1000,2000 -o transfer56/   # 56 x 56, minutes
      chrombench transfer -m deepchrome --suite quick --mode fine-tune -o finetune/
      chrombench transfer -m transferchrome --all-tasks --mode fine-tune --folds 4 -o ft56/  # 4 pretrainings
    """
    from ..engine.transfer import fine_tune_table, transfer_matrix, write_fine_tune_outputs, write_outputs
    from ..errors import ChrombenchError
    from ..tasks import get_suite
    from .run_cmd import parse_genes

    chosen = [bool(tasks), bool(suite), all_tasks]
    if sum(chosen) != 1:
        raise click.UsageError("give exactly one of -t TASK (repeatable), --suite or --all-tasks")
    sizes = parse_genes(genes)
    if suite:
        spec = get_suite(suite)
        task_list, sizes = list(spec.tasks), sizes or spec.genes
    elif all_tasks:
        task_list, sizes = list(get_suite("roadmap56").tasks), sizes or get_suite("quick").genes
    else:
        task_list = list(tasks)
    if len(task_list) < 2:
        raise ChrombenchError("a transfer matrix needs at least two tasks")
    if folds is not None and mode != "fine-tune":
        raise click.UsageError("--folds groups fine-tune targets for pretraining; it goes with --mode fine-tune")
    say = lambda text: click.echo(text, err=True)  # noqa: E731
    if mode == "fine-tune":
        ft = fine_tune_table(model, task_list, dataset, genes=sizes, seed=seed, device=device, progress=say, folds=folds)
        files = write_fine_tune_outputs(ft, out_dir)
        click.echo(f"{ft.model}, fine-tune, {len(ft.tasks)} targets: mean test AUROC trained on the target alone "
                   f"{ft.mean('scratch'):.4f}, pretrained on the others {ft.mean('pooled'):.4f}, fine-tuned "
                   f"{ft.mean('fine-tuned'):.4f}")
        click.echo("Wrote " + ", ".join(str(f) for f in files))
        return
    result = transfer_matrix(model, task_list, dataset, genes=sizes, seed=seed, device=device, progress=say)
    files = write_outputs(result, out_dir)
    click.echo(f"{result.model}, {mode}, {len(result.tasks)} x {len(result.tasks)} tasks: diagonal mean AUROC "
               f"{result.diagonal_mean:.4f}, off-diagonal {result.off_diagonal_mean:.4f}")
    click.echo("Wrote " + ", ".join(str(f) for f in files))
