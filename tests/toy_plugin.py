"""A third party's model, written once for the tests that install, submit or load one: per-mark
promoter means into a least-squares scorer."""

import numpy as np

from chrombench.models.contract import ChromModel, check_counts, fit_report


class PromoterMeans(ChromModel):
    """Least squares on the promoter's mean log counts per mark."""
    name = "promoter-means"
    family = "third-party-test"
    description = "least squares on promoter mean log counts (a third-party test model)"
    param_ranges = {"l2": "[0, inf)"}

    def __init__(self, l2: float = 1.0, seed: int = 0):
        self.l2 = l2
        self.seed = seed

    @classmethod
    def search_space(cls, trial):
        return {"l2": trial.suggest_float("l2", 1e-3, 10.0, log=True)}

    def _f(self, X):
        X = np.log1p(np.asarray(check_counts(X), dtype=float))[:, 40:60, :].mean(axis=1)
        return np.c_[X, np.ones(len(X))]

    def fit(self, train, valid=None, on_epoch=None):
        F = self._f(train.X)
        self.w_ = np.linalg.solve(F.T @ F + self.l2 * np.eye(6), F.T @ (2.0 * train.y - 1))
        return self

    def predict_proba(self, X):
        p = 1 / (1 + np.exp(-3 * self._f(X) @ self.w_))
        return np.column_stack([1 - p, p])

    def n_parameters(self):
        return 6

    def training_report(self):
        return fit_report("complete", iterative=False)

    def _save_state(self, directory):
        np.save(directory / "w.npy", self.w_)
        return {}

    def _load_state(self, directory, config):
        self.w_ = np.load(directory / "w.npy")
