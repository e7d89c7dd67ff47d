"""Bring your own training loop: a task's arrays (``load_task``), the leaderboard's metrics
(``Evaluator``) and a result record from your predictions (``record_predictions``). Re-exported by
``chrombench`` itself, lazily."""

from .evaluator import Evaluator
from .record import record_predictions, write_predictions
from .task import Arrays, Task, load_task

__all__ = ["Arrays", "Evaluator", "Task", "load_task", "record_predictions", "write_predictions"]
