"""The ``chrombench`` command line. Click commands only: parse, call one function, print.

Sub-commands live in sibling modules and are imported lazily, so ``chrombench --help`` is fast
and one broken optional dependency cannot take the whole CLI down.
"""

from __future__ import annotations

import importlib
import os
import json
import sys

import click

from .. import __version__
from ..errors import ChrombenchError

# Idle OpenMP threads (torch, XGBoost) spin by default; on a shared 2-core machine a spinning barrier
# made DeepChrome fits 7x slower whenever another process held a core (PASSIVE: 1.7x). It takes effect
# only if set before torch or xgboost loads, hence here, before any command is imported; a user's own
# setting wins, and the processes a command starts inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# command name -> "module:attribute" (module relative to chrombench.cli)
COMMANDS = {
    "tasks": ("tasks_cmd:tasks", "List and inspect the 56 cell-type tasks and the suites."),
    "data": ("data_cmd:data", "Fetch the real archive, import your own data, inspect datasets."),
    "models": ("models_cmd:models", "List the model zoo."),
    "train": ("models_cmd:train", "Train one model with fixed hyperparameters and save it."),
    "predict": ("models_cmd:predict", "Predict expression probabilities with a saved model."),
    "import-weights": ("models_cmd:import_weights", "Turn a reference AttentiveChrome state dict into a chrombench model."),
    "run": ("run_cmd:run", "Evaluate models on tasks: fits to convergence, tested once, tracked (the main job)."),
    "ablate": ("run_cmd:ablate", "AttentiveChrome against its ablations, with paired statistics."),
    "ui": ("run_cmd:ui", "Start the MLflow UI on the local tracking store."),
    "leaderboard": ("leaderboard_cmd:leaderboard", "Render and validate leaderboards."),
    "submit": ("leaderboard_cmd:submit", "Run the full protocol for your model and write a leaderboard bundle."),
    "record": ("record_cmd:record", "A result record from predictions made in your own training loop."),
    "explain": ("explain_cmd:explain", "Attention maps, saliency and importances, scored against ground truth."),
    "transfer": ("transfer_cmd:transfer", "Train on one cell type, test on another: an N x N AUROC matrix."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return [name for name in COMMANDS if self._available(name)]

    @staticmethod
    def _available(name: str) -> bool:
        module = COMMANDS[name][0].split(":")[0]
        return importlib.util.find_spec(f"chrombench.cli.{module}") is not None

    def get_command(self, ctx, name):
        if name not in COMMANDS or not self._available(name):
            return None
        module, attr = COMMANDS[name][0].split(":")
        return getattr(importlib.import_module(f"chrombench.cli.{module}"), attr)

    def format_commands(self, ctx, formatter):
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def resolve_command(self, ctx, args):
        name = args[0] if args else None
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            from ..registry import suggest
            raise click.UsageError(suggest(name, self.list_commands(ctx), "command"), ctx)
        return super().resolve_command(ctx, args)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ChrombenchError as exc:
            click.secho(f"Error: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except (OSError, RecursionError, MemoryError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            # the last line of defence: what the command did not turn into a ChrombenchError itself still
            # reaches the user as one line naming the file or value, never a traceback
            click.secho(f"Error: {one_line(exc)}", fg="red", err=True)
            sys.exit(1)


def one_line(exc: BaseException) -> str:
    """An operating-system, depth, memory or decoding failure as one line that names its file or value."""
    if isinstance(exc, OSError):
        where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
        why = exc.strerror or str(exc) or type(exc).__name__
        return f"{where}: {why}" if where else why
    if isinstance(exc, RecursionError):
        return ("input nested too deeply to read (RecursionError): a JSON file or parameter holds thousands of "
                "nested levels; chrombench never writes such files, so the file was damaged or crafted")
    if isinstance(exc, MemoryError):
        return ("out of memory (MemoryError): a parameter or a saved configuration asks for more memory than this "
                "machine has; check the values given with --param or in the model's config.json")
    return f"cannot decode input: {str(exc)[:300]}"


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="chrombench")
def main():
    """chrombench: predict gene expression from histone modifications, on 56 Roadmap tasks.

    \b
    Start here:
      chrombench run                      quick suite, simulated data, 8 models, about 5 min
      chrombench tasks list               the 56 cell-type tasks
      chrombench models list              the model zoo
      chrombench data fetch --tasks E003  the real REMC archive (needs network)

    All state (data cache, imported datasets) lives under $CHROMBENCH_HOME.
    """
