"""chrombench: a benchmark suite for predicting gene expression from histone modifications.

The Python API for your own training loop (imported on first use, so ``import chrombench`` stays
cheap: no torch, pandas or mlflow)::

    import chrombench
    task = chrombench.load_task("E003", suite="quick")           # train/valid arrays, metadata
    scores = chrombench.Evaluator("E003").eval({"y_true": y, "y_pred": p})
    chrombench.record_predictions("preds.csv", task, seed=0, model_name="my-model")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Column order of the DeepChrome/AttentiveChrome archive format; every array in chrombench uses it.
MARKS = ("H3K27me3", "H3K36me3", "H3K4me1", "H3K4me3", "H3K9me3")
N_BINS = 100
N_MARKS = len(MARKS)

__all__ = ["Arrays", "Evaluator", "MARKS", "N_BINS", "N_MARKS", "Task", "__version__", "load_task",
           "record_predictions", "write_predictions"]
_API = {"Arrays", "Evaluator", "Task", "load_task", "record_predictions", "write_predictions"}

if TYPE_CHECKING:
    from .api import Arrays, Evaluator, Task, load_task, record_predictions, write_predictions  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'chrombench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _API)
