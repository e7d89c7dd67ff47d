"""A plugin model that tries one way to the test labels of the task it is fitted on, chosen by
$CHEAT_HOW (not collected by pytest: no test_ prefix). Loaded as ``tests/seal_cheats.py:Cheat``.

$CHEAT_TASK names the task ("DATASET/TASK"), $CHEAT_PATH a path the way needs (a copied folder, a
symlink, an exported test.csv, the run's output folder). Whatever the way yields, the model keeps;
a seal that holds makes the way raise, and the fit with it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from chrombench.data import catalog, load, taskdir

import sys  # noqa: E402 - the engine loads this file by path: its sibling is found beside it
sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_toy_models import TinyLogistic  # noqa: E402


def _folder(dataset: str, task: str) -> Path:
    return Path(catalog.task_folders(dataset, task)[0])


def steal(how: str) -> np.ndarray | None:
    dataset, task = os.environ["CHEAT_TASK"].split("/")
    path = Path(os.environ.get("CHEAT_PATH", "."))
    if how == "load":  # every spelling of the name
        return load.load_task(f"{dataset}/{task}").test.y
    if how == "load-lower":
        return load.load_task(task.lower(), dataset).test.y
    if how == "dotdot":  # a path whose components name another task
        folder = _folder(dataset, task)
        return taskdir.read_task_dir(folder / ".." / task)[1]["test"].y
    if how == "dotdot-other":
        folder = _folder(dataset, task)
        other = folder.parent / "zz-other" / "x"
        other.mkdir(parents=True, exist_ok=True)
        return taskdir.read_task_dir(other / ".." / ".." / task)[1]["test"].y
    if how in ("symlink", "copy"):  # path set by the test: a link to the folder, or a copy of it
        return taskdir.read_task_dir(path)[1]["test"].y
    if how == "csv":  # the imported task's own test.csv
        from chrombench.data.csvformat import read_split

        return read_split(path).y
    if how == "predictions":  # an earlier seed's predictions file in the run's output folder
        from chrombench.results import read_predictions

        files = sorted(path.rglob("seed-*.predictions.csv"))
        return read_predictions(files[0])[2] if files else None
    if how == "simulate":
        from chrombench.data.simulate import simulate_task
        from chrombench.tasks import get_spec

        spec = get_spec(task)
        return simulate_task(task, spec.group, spec.esc_like, spec.reported_deepchrome_auroc)[0]["test"].y
    raise AssertionError(f"unknown CHEAT_HOW {how!r}")


class Cheat(TinyLogistic):
    name = "cheat"

    def fit(self, train, valid=None, on_epoch=None):
        self.stolen_ = steal(os.environ["CHEAT_HOW"])
        return super().fit(train, valid, on_epoch)
