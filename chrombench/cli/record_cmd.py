"""``chrombench record``: a result record from predictions made outside the engine."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .options import suite_option


def _params(values: tuple[str, ...]) -> dict:
    out = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: use KEY=VALUE (VALUE as JSON, else a string)", param_hint="'--param'")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


@click.command()
@click.argument("predictions", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-t", "--task", required=True, help="The task: E003, an imported dataset's NAME, or NAME/TASK.")
@click.option("--seed", type=click.IntRange(min=0), required=True, help="The seed of the fit that made the predictions.")
@click.option("--model-name", required=True, help="The name the row gets on the leaderboard (not a zoo model's).")
@suite_option(help="The suite the task was loaded under (quick: its gene subsample; the record then joins that "
                   "suite's leaderboard section). Default: full size, explicit task.")
@click.option("--data", "dataset", default=None, help="simremc (default), remc, or an imported/built dataset.")
@click.option("--valid", "valid_predictions", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The same for the valid genes: recorded as the valid metrics (optional).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("chrombench-out"),
              show_default=True, help="Written to OUT/results/<dataset>/<model>/<task>/, as `chrombench run` does.")
@click.option("--param", "params", multiple=True, help="A hyperparameter for the record, KEY=VALUE (repeatable).")
@click.option("--n-parameters", type=click.IntRange(min=0), default=0, show_default=True,
              help="Your model's trainable parameter count (shown on the page).")
@click.option("--family", default="custom", show_default=True, help="The model family shown on the page.")
@click.option("--fit-time", "fit_time_s", type=click.FloatRange(min=0), default=0.0, help="Seconds the fit took.")
@click.option("--overwrite", is_flag=True, help="Replace this seed's record if it exists.")
def record(predictions, task, seed, model_name, suite, dataset, valid_predictions, out_dir, params, n_parameters,
           family, fit_time_s, overwrite):
    """Turn predictions from your own training loop into the result record the engine writes.

    PREDICTIONS is a CSV with a header and one line per test gene: gene_id,probability (the
    probability that the gene is expressed), optionally label (checked against the split), task and
    dataset (checked against -t and --data); .csv.gz is read too. The metrics are computed by the
    leaderboard's evaluator from your probabilities and the split's labels; the record carries the
    dataset's content hash, the protocol version and a digest, and is marked as predictions from
    outside the engine (no code travels with it, so it cannot be rebuilt). A file whose genes do not
    match the split, a duplicate gene, a probability outside [0, 1] or a label of another task is
    refused, naming the line; nothing is written then.

    \b
    Examples:
      chrombench record preds-seed0.csv -t E003 --seed 0 --model-name my-model
      chrombench record preds.csv -t E003 --suite quick --seed 1 --model-name my-cnn --valid valid.csv
      chrombench record preds.csv -t mydata --seed 0 --model-name my-model --out my-results
      # then, with every task and seed of a suite recorded:
      chrombench leaderboard bundle chrombench-out/results --suite quick --out my-bundles
      chrombench leaderboard render --results leaderboards/zoo --results my-bundles --out page
    """
    from ..api.record import record_predictions

    path = record_predictions(predictions, task, seed=seed, model_name=model_name, suite=suite, data=dataset,
                              valid_predictions=valid_predictions, out_dir=out_dir, params=_params(params),
                              n_parameters=n_parameters, family=family, fit_time_s=fit_time_s, overwrite=overwrite)
    rec = json.loads(path.read_text())
    test = rec["metrics"]["test"]
    click.echo(f"Wrote {path} (and its predictions and the task's summary.json)")
    click.echo(f"{rec['model']['name']} on {rec['dataset']['name']}/{rec['task']['name']} seed {seed}: test AUROC "
               f"{test['auroc']:.4f}, AUPRC {test['auprc']:.4f}, accuracy {test['accuracy']:.4f}"
               + (" (simulated data)" if rec["dataset"]["simulated"] else ""))
