"""``chrombench models | train | predict | import-weights``: the model zoo on the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .options import device_option, suite_option

from ..errors import ChrombenchError
from ..models.weights import ARCHITECTURES



@click.group()
def models():
    """The model zoo: AttentiveChrome and its ablations, DeepChrome, classical baselines.

    \b
    Examples:
      chrombench models list
      chrombench models list --format json
    """


@models.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def list_models(fmt):
    """One line per registered model: name, family, parameter count, description.

    A model whose code cannot be imported (a missing optional dependency, say) is listed as
    "unavailable" with the reason instead of breaking the listing.
    """
    from ..models.catalog import describe

    rows = [describe(name) for name in _zoo_names()]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    from ..models.registry import ALIASES

    short = {full: alias for alias, full in ALIASES.items()}
    click.echo(f"{'name':<31} {'alias':<6} {'family':<14} {'parameters':>14}  description")
    for r in rows:
        count = "" if not r["available"] else ("data-dependent" if r["parameters"] is None else f"{r['parameters']:,}")
        click.echo(f"{r['name']:<31} {short.get(r['name'], ''):<6} {r['family']:<14} {count:>14}  {r['description']}")
    from ..models.registry import PLUGIN_PROBLEMS

    for ep, why in PLUGIN_PROBLEMS.items():
        click.echo(f"plugin {ep}: {why}", err=True)


def _zoo_names() -> list[str]:
    """The zoo, then the models installed distributions declare (entry points ``chrombench.models``)."""
    from ..models.registry import MODELS, load_plugins

    load_plugins()
    return MODELS.names()


# -- train -----------------------------------------------------------------------------------------

def parse_value(text: str):
    """``--param`` values: true/false -> bool, none -> None, then int, then float, else the string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _coerce(name: str, value, default, model: str):
    """Check a parsed value against the parameter's default type (ints widen to floats)."""
    if default is None or value is None or type(value) is type(default):
        return value
    if isinstance(default, float) and type(value) is int:
        return float(value)
    if isinstance(default, str):
        return str(value)
    raise click.BadParameter(f"{name}={value!r}: {model} expects a {type(default).__name__} "
                             f"(default {default!r})", param_hint="'--param'")


def model_params(cls, name: str, pairs, **options) -> dict:
    """``__init__`` kwargs from ``--param key=value`` pairs and the named options (None = not given)."""
    defaults = _init_defaults(cls)
    out = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="'--param'")
        if key not in defaults:
            raise click.BadParameter(f"{name} has no parameter {key!r}; its parameters are: "
                                     f"{', '.join(sorted(defaults))}", param_hint="'--param'")
        out[key] = _coerce(key, parse_value(raw), defaults[key], name)
    for key, value in options.items():
        if value is None:
            continue
        if key not in defaults:
            flag = "--" + key.replace("_", "-")
            raise click.BadParameter(f"{name} has no {key!r} parameter", param_hint=f"'{flag}'")
        out[key] = value
    return out


def _init_defaults(cls) -> dict:
    """``__init__`` parameter -> default (None when it has none), the way sklearn's get_params sees them."""
    import inspect

    sig = inspect.signature(cls.__init__)
    return {p.name: (None if p.default is inspect.Parameter.empty else p.default)
            for p in list(sig.parameters.values())[1:] if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _check_out_dir(out: str) -> None:
    """Refuse to replace a folder that is not a saved chrombench model (it may hold the user's files)."""
    path = Path(out)
    if path.exists() and (not path.is_dir() or (any(path.iterdir()) and not (path / "config.json").is_file())):
        raise ChrombenchError(f"{out} exists and is not a saved chrombench model; choose another output folder")


@click.command()
@click.option("-m", "--model", "model_name", required=True, metavar="MODEL",
              help="A zoo name (see `chrombench models list`) or your own class as module:Class or path/file.py:Class.")
@click.option("-t", "--task", required=True, help="Task, e.g. E003 (or DATASET/TASK for an imported dataset).")
@click.option("--data", "dataset", default=None, help="Dataset of the task [default: simremc, the simulator].")
@suite_option(help="The genes of the task as in this suite, the same option as `chrombench run` (quick: its "
                   "subsample; roadmap56: full size, the default).")
@click.option("--quick", is_flag=True, help="The same as --suite quick.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="A hyperparameter, repeatable: --param lr=0.003 --param dropout=0.3.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Maximum epochs (neural models).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Genes per batch (neural models).")
@click.option("--seed", type=int, default=None, help="Random seed [default: the model's, 0].")
@device_option(default=None, help="auto = CUDA when available [default: the model's, auto].")
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False), help="Folder to save the model in.")
@click.option("--no-progress", is_flag=True, help="No progress bar (logs and CI).")
def train(model_name, task, dataset, suite, quick, params, epochs, batch_size, seed, device, out, no_progress):
    """Train one model with fixed hyperparameters on a task's train split and save it.

    Early stopping (neural models) watches the valid split; the test split is never touched.
    Prints the validation AUROC of the saved model. No tuning here: `chrombench run` does
    Optuna-tuned, tracked evaluations.

    \b
    Examples:
      chrombench train -m attentivechrome -t E003 -o models/ac-E003
      chrombench train -m deepchrome -t E003 --epochs 10 --param lr=0.003 -o models/dc
      chrombench train -m xgboost -t E116 --quick -o models/xgb
      chrombench train -m my_models.py:MyModel -t E003 -o models/mine
    """
    from ..data.load import load_task
    from ..engine.evaluation import TuningView, fit_sealed, predict_on
    from ..evaluate import auroc
    from ..models.registry import get_model_class

    cls = get_model_class(model_name)
    kwargs = model_params(cls, model_name, params, epochs=epochs, batch_size=batch_size, seed=seed, device=device)
    _check_out_dir(out)
    # train and valid only (in memory), and the task sealed while the model fits: the same rule as `run`
    data = TuningView.of(load_task(task, dataset, quick=quick or suite == "quick"))
    model = cls(**kwargs)
    label = f"{model_name} on {data.dataset.name}/{data.task}"
    click.echo(f"training {label}: {len(data.train)} train / {len(data.valid)} valid genes", err=True)
    with _EpochProgress(getattr(model, "epochs", None), label, disable=no_progress) as progress:
        fit_sealed(model, data, on_epoch=progress.update)
    valid_auroc = auroc(data.valid.y, predict_on(model, data.valid))
    model.save(out)
    click.echo(f"valid AUROC {valid_auroc:.4f}  ({label}, {len(data.valid)} genes); saved to {out}")
    ended = model.training_report() if hasattr(model, "training_report") else {}
    if ended.get("stopped_by") not in (None, "unknown"):
        detail = ", ".join(f"{k.replace('_', ' ')} {ended[k]}" for k in ("epochs_run", "best_epoch", "cap") if k in ended)
        verdict = "converged" if ended.get("converged") else "UNCONVERGED: still improving when it stopped"
        click.echo(f"training ended by {ended['stopped_by']} ({detail}): {verdict}")


class _EpochProgress:
    """Per-epoch time and validation AUROC on stderr: a tqdm bar on a terminal, one line per epoch
    otherwise (logs, CI), nothing with --no-progress."""

    def __init__(self, max_epochs, label: str, disable: bool):
        from tqdm.auto import tqdm

        self.max_epochs, self.quiet = max_epochs, disable
        self.bar = tqdm(total=max_epochs, desc=label, unit="epoch", file=sys.stderr, disable=True if disable else None)

    def update(self, epoch: int, metrics: dict) -> None:
        summary = (f"{metrics.get('epoch_time', float('nan')):.1f}s/epoch, "
                   f"valid AUROC {metrics.get('valid_auroc', float('nan')):.4f}")
        if not self.bar.disable:
            self.bar.set_postfix_str(summary)
            self.bar.update(1)
        elif not self.quiet:
            total = f"/{self.max_epochs}" if self.max_epochs else ""
            click.echo(f"epoch {epoch + 1}{total}: {summary}, train loss {metrics.get('train_loss', float('nan')):.4f}",
                       err=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.bar.close()


# -- predict ---------------------------------------------------------------------------------------

@click.command()
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("input_csv", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), help="CSV file to write.")
@device_option(help="Where a neural model computes (a model trained on a GPU predicts on a CPU too).")
@click.option("--trust-code", is_flag=True,
              help="Load a model whose class is third-party code (a module:Class or file.py:Class target, "
                   "e.g. a submission): that code is imported and run. Zoo models never need this.")
def predict(model_dir, input_csv, out, device, trust_code):
    """Expression probabilities for the genes of INPUT_CSV with the model saved in MODEL_DIR.

    INPUT_CSV is in the archive format (no header; 100 rows per gene: GeneID, BinID, the 5 mark
    counts, label); the label column may be left out. Writes OUT with columns gene_id,
    probability (of expression above the median) and, when the input has it, the label. Gene IDs
    are kept as written (leading zeros included).

    \b
    Examples:
      chrombench predict models/ac-E003 E003/classification/test.csv -o preds.csv
      chrombench import-weights E003_attchrome_avgAUC_model.pt -o models/ref-E003
      chrombench predict models/ref-E003 genes.csv -o preds.csv
    """
    from .. import results
    from ..data.csvformat import UNLABELLED, read_unlabelled
    from ..evaluate import auroc
    from ..models.io import load_model

    model = load_model(model_dir, trust_code=trust_code, device=device)
    split = read_unlabelled(input_csv)
    marks = model.input_marks() if hasattr(model, "input_marks") else split.marks
    if tuple(marks) != tuple(split.marks):  # same shape, other marks (a `data build` order): refuse, never mix
        from ..errors import ChrombenchError

        raise ChrombenchError(f"{model_dir} was fitted on marks {', '.join(marks)}; {input_csv} is in the archive's "
                              f"layout ({', '.join(split.marks)})")
    proba = model.predict_proba(split.X)[:, 1]
    labelled = not (split.y == UNLABELLED).any()
    results.write_predictions(Path(out), split.gene_ids, proba, split.y if labelled else None)
    msg = f"wrote {len(proba)} predictions to {out}"
    if labelled and 0 < int(split.y.sum()) < len(split.y):
        msg += f"; AUROC against the input's labels {auroc(split.y, proba):.4f}"
    click.echo(msg)


# -- import-weights ------------------------------------------------------------------------------

@click.command("import-weights")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--arch", type=click.Choice(ARCHITECTURES), default="attentivechrome", show_default=True,
              help="Architecture of the state dict: attentivechrome (the published weights) or an ablation.")
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False), help="Folder to save the model in.")
def import_weights(file, arch, out):
    """Turn a reference AttentiveChrome state dict (.pt) into a saved chrombench model.

    FILE is a state dict of the reference implementation (QData/AttentiveChrome), e.g. the
    published per-cell-type weights (Zenodo record 2616712, <EID>_attchrome_avgAUC_model.pt).
    It is loaded without running any pickled code, checked key by key (every missing or
    unexpected key and wrong shape is reported; nothing is written unless all fit) and saved as
    a model taking raw counts, as the reference does. `chrombench predict` with it reproduces the
    reference's probabilities.

    \b
    Examples:
      chrombench import-weights E003_attchrome_avgAUC_model.pt -o models/ref-E003
      chrombench predict models/ref-E003 E003/classification/test.csv -o preds.csv
    """
    from ..models.weights import import_reference_weights

    _check_out_dir(out)
    model = import_reference_weights(file, arch, out)
    click.echo(f"imported {file} as {arch} ({model.n_parameters():,} parameters, raw-count inputs); saved to {out}")
