"""An example third-party model for `chrombench submit`: the smallest thing that follows the contract.

Features: log1p mean counts of each mark over the promoter (+/-1 kb around the TSS) and over the
gene body (+1..+5 kb), 10 numbers per gene, into a logistic regression.

    chrombench submit examples/promoter_model.py:PromoterModel --name promoter-logreg --suite quick
"""

from __future__ import annotations

import json

import numpy as np
from sklearn.linear_model import LogisticRegression

from chrombench.models.contract import ChromModel, check_counts


def promoter_features(X) -> np.ndarray:
    X = np.log1p(np.asarray(X, dtype=np.float32))
    return np.concatenate([X[:, 40:60].mean(axis=1), X[:, 60:].mean(axis=1)], axis=1)


class PromoterModel(ChromModel):
    """Logistic regression on promoter and gene-body mean log counts (10 features)."""

    name = "promoter-logreg"
    family = "classical"
    description = "logistic regression on promoter and gene-body mean log counts"

    def __init__(self, C: float = 1.0, seed: int = 0):
        self.C = C
        self.seed = seed

    @classmethod
    def search_space(cls, trial):
        return {"C": trial.suggest_float("C", 1e-3, 10.0, log=True)}

    def fit(self, train, valid=None, on_epoch=None):
        self.clf_ = LogisticRegression(C=self.C, max_iter=1000, random_state=self.seed)
        self.clf_.fit(promoter_features(train.X), train.y)
        return self

    def predict_proba(self, X):
        return self.clf_.predict_proba(promoter_features(check_counts(X)))

    def n_parameters(self):
        return 11

    def _save_state(self, directory):
        (directory / "coef.json").write_text(json.dumps({"coef": self.clf_.coef_.tolist(),
                                                         "intercept": self.clf_.intercept_.tolist()}))
        return {}

    def _load_state(self, directory, config):
        state = json.loads((directory / "coef.json").read_text())
        self.clf_ = LogisticRegression()
        self.clf_.coef_ = np.array(state["coef"])
        self.clf_.intercept_ = np.array(state["intercept"])
        self.clf_.classes_ = np.array([0, 1])
