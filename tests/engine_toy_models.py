"""Tiny ChromModels for the engine's tests (not collected by pytest: no test_ prefix).

They are fast on purpose, so engine tests never depend on the zoo's speed, and are loaded by the
engine as ``tests/engine_toy_models.py:Class`` targets, in-process or in a ``chrombench run``
subprocess.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from chrombench.data import layout, load, seal, taskdir
from chrombench.evaluate import auroc
from chrombench.models.contract import ChromModel, check_counts


def _features(X) -> np.ndarray:
    X = np.log1p(np.asarray(X, dtype=np.float64))
    return np.concatenate([X.mean(axis=1), X[:, 40:60, :].mean(axis=1)], axis=1)  # [n, 10]


class TinyLogistic(ChromModel):
    """Logistic regression on 10 summary features, trained by gradient descent, one epoch at a time."""

    name = "tiny-logistic"
    family = "test"
    description = "10-feature logistic regression for engine tests"

    def __init__(self, lr: float = 0.5, l2: float = 1e-3, epochs: int = 4, seed: int = 0):
        self.lr = lr
        self.l2 = l2
        self.epochs = epochs
        self.seed = seed

    @classmethod
    def search_space(cls, trial) -> dict:
        return {"lr": trial.suggest_float("lr", 1e-2, 1.0, log=True), "l2": trial.suggest_float("l2", 1e-4, 1e-1, log=True)}

    def fit(self, train, valid=None, on_epoch=None):
        F = _features(check_counts(train.X))
        self.mu_, self.sd_ = F.mean(axis=0), F.std(axis=0) + 1e-9
        F = (F - self.mu_) / self.sd_
        y = np.asarray(train.y, dtype=np.float64)
        rng = np.random.default_rng(self.seed)
        self.w_ = rng.normal(0, 0.01, F.shape[1])
        self.b_ = 0.0
        sleep = float(os.environ.get("CHROMBENCH_TOY_SLEEP", "0"))
        for epoch in range(self.epochs):
            p = 1 / (1 + np.exp(-(F @ self.w_ + self.b_)))
            loss = -np.mean(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12))
            self.w_ -= self.lr * (F.T @ (p - y) / len(y) + self.l2 * self.w_)
            self.b_ -= self.lr * float(np.mean(p - y))
            if sleep:
                time.sleep(sleep)
            if on_epoch is not None and valid is not None:
                on_epoch(epoch, {"valid_auroc": auroc(valid.y, self.predict_proba(valid.X)[:, 1]), "train_loss": loss})
        return self

    def predict_proba(self, X) -> np.ndarray:
        F = (_features(check_counts(X)) - self.mu_) / self.sd_
        p = 1 / (1 + np.exp(-(F @ self.w_ + self.b_)))
        return np.column_stack([1 - p, p])

    def n_parameters(self) -> int:
        return 11

    def _save_state(self, directory: Path) -> dict:
        np.save(directory / "weights.npy", np.r_[self.w_, self.b_, self.mu_, self.sd_])
        return {}

    def _load_state(self, directory: Path, config: dict) -> None:
        v = np.load(directory / "weights.npy")
        self.w_, self.b_, self.mu_, self.sd_ = v[:10], float(v[10]), v[11:21], v[21:31]


class PeekingModel(TinyLogistic):
    """Cheats: reloads its task from the data store during fit to read the test labels."""

    name = "peeking-model"

    def __init__(self, lr: float = 0.5, l2: float = 1e-3, epochs: int = 2, seed: int = 0, peek: str = "E003"):
        super().__init__(lr=lr, l2=l2, epochs=epochs, seed=seed)
        self.peek = peek

    def fit(self, train, valid=None, on_epoch=None):
        data = load.load_task(self.peek, "simremc", genes={"train": 50, "valid": 50, "test": 50})
        self.stolen_ = np.asarray(data.test.y)
        return super().fit(train, valid, on_epoch)


class ThreadPeekingModel(PeekingModel):
    """Cheats from a thread of its own, where a per-context seal would not reach."""

    name = "thread-peeking-model"

    def fit(self, train, valid=None, on_epoch=None):
        import threading

        caught = []

        def steal():
            try:
                self.stolen_ = np.asarray(load.load_task(self.peek, "simremc").test.y)
            except BaseException as exc:  # hand it to fit, which is what the engine sees
                caught.append(exc)

        t = threading.Thread(target=steal)
        t.start()
        t.join()
        if caught:
            raise caught[0]
        return TinyLogistic.fit(self, train, valid, on_epoch)


class ResimulatingModel(PeekingModel):
    """Cheats by running the simulator again for its task."""

    name = "resimulating-model"

    def fit(self, train, valid=None, on_epoch=None):
        from chrombench.data.simulate import simulate_task
        from chrombench.tasks import get_spec

        spec = get_spec(self.peek)
        splits, _ = simulate_task(self.peek, spec.group, spec.esc_like, spec.reported_deepchrome_auroc)
        self.stolen_ = splits["test"].y
        return TinyLogistic.fit(self, train, valid, on_epoch)


class DirectoryReadingModel(PeekingModel):
    """Cheats by reading the cached task folder with the store's own reader."""

    name = "directory-reading-model"

    def fit(self, train, valid=None, on_epoch=None):
        root = layout.datasets_dir() / "simremc" / layout.simremc_version() / self.peek
        _, splits, _ = taskdir.read_task_dir(root)
        self.stolen_ = np.asarray(splits["test"].y)
        return TinyLogistic.fit(self, train, valid, on_epoch)


def reachable_test_data(test_ids: set[str], frame=None) -> list[str]:
    """What of the test split an in-process model can find without opening files: splits, tasks and
    gene-ID arrays that the garbage collector tracks or that sit in the locals of a caller's frame."""
    import gc
    import sys

    from chrombench.data.arrays import Split, TaskData

    def holds_test(obj) -> bool:
        if isinstance(obj, TaskData):
            obj = obj.test
        if isinstance(obj, Split):
            obj = obj.gene_ids
        if isinstance(obj, np.ndarray) and obj.dtype.kind in "UO" and obj.ndim == 1 and len(obj):
            return str(obj[0]) in test_ids
        return False

    import warnings

    with warnings.catch_warnings():  # isinstance() on torch's lazy deprecated aliases warns
        warnings.simplefilter("ignore")
        found = [f"gc: {type(o).__name__}" for o in gc.get_objects() if holds_test(o)]
    f = frame or sys._getframe(1)
    while f is not None:
        found += [f"frame {f.f_code.co_name}: {name}" for name, value in list(f.f_locals.items()) if holds_test(value)]
        f = f.f_back
    return found


class ScavengingModel(TinyLogistic):
    """Looks everywhere in memory for the test split while it fits and writes what it found to
    $CHROMBENCH_SPY (the test IDs to look for are in $CHROMBENCH_TEST_IDS)."""

    name = "scavenger"

    def fit(self, train, valid=None, on_epoch=None):
        import sys

        test_ids = set(Path(os.environ["CHROMBENCH_TEST_IDS"]).read_text().split())
        report = {"found": reachable_test_data(test_ids, sys._getframe(1)),
                  "memmap": any(isinstance(s.X, np.memmap) or getattr(s.X, "filename", None)
                                for s in (train, valid) if s is not None)}
        with open(os.environ["CHROMBENCH_SPY"], "a") as fh:
            fh.write(json.dumps(report) + "\n")
        return super().fit(train, valid, on_epoch)


class SpyModel(TinyLogistic):
    """Honest, but writes every fit/predict_proba call (and whether tuning was running) to $CHROMBENCH_SPY."""

    name = "spy"

    def _note(self, event: str, X) -> None:
        with open(os.environ["CHROMBENCH_SPY"], "a") as fh:
            fh.write(json.dumps({"event": event, "sealed": seal.any_sealed(), "n": len(X),
                                 "digest": _digest(X)}) + "\n")

    def fit(self, train, valid=None, on_epoch=None):
        self._note("fit", train.X)
        return super().fit(train, valid, on_epoch)

    def predict_proba(self, X):
        self._note("predict", X)
        return super().predict_proba(X)


class Constant(TinyLogistic):
    """No hyperparameters at all: tuning it once is enough."""

    name = "constant"

    @classmethod
    def search_space(cls, trial) -> dict:
        return {}


def _digest(X) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(X, dtype="<i4").tobytes()).hexdigest()[:16]


class AttentiveToy(TinyLogistic):
    """Exposes ``attention(X) -> (alpha [n, 5, 100], beta [n, 5])`` like AttentiveChrome does."""

    name = "attentive-toy"

    def attention(self, X):
        X = np.log1p(np.asarray(X, dtype=np.float64)).transpose(0, 2, 1)  # [n, marks, bins]
        alpha = np.exp(X) / np.exp(X).sum(axis=2, keepdims=True)
        m = X.mean(axis=2)
        beta = np.exp(m) / np.exp(m).sum(axis=1, keepdims=True)
        return alpha, beta


class Broken(TinyLogistic):
    """Fails in every fit, as a model with a bug does."""

    name = "broken"

    def fit(self, train, valid=None, on_epoch=None):
        raise RuntimeError("this model has a bug")


class WindowedLogistic(__import__("chrombench.baselines.classical", fromlist=["x"]).LogisticRegressionModel):
    """The zoo's logistic regression on 1 kb windows only: per-bin ('flat') weights fitted to a few
    hundred genes are too noisy for an importance map to mean anything, and a test must not depend
    on which feature set the sampler draws."""

    name = "windowed-logistic"

    @classmethod
    def search_space(cls, trial) -> dict:
        return {"C": trial.suggest_float("C", 1e-2, 10.0, log=True), "features": "windows"}
