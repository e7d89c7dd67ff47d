"""Classical baselines behind the ChromModel contract: RBF-SVM, random forest, XGBoost, logistic regression.

DeepChrome and AttentiveChrome compare against these on the same inputs; here they see fixed-length
features built from ``log1p`` counts (``chrombench.baselines.features``; the ``features``
hyperparameter picks "windows", "flat" or "both"). Every model:

- is fitted on ``train`` only, except XGBoost, which early-stops on ``valid`` (the one use the
  contract allows). Classical models are not iterative, so ``on_epoch`` is never called: reporting
  a single final score as "epoch 0" would let a pruner throw away finished trials;
- honours ``seed`` (same seed -> identical predictions);
- saves without pickles: XGBoost's own JSON model format, scikit-learn estimators through
  ``skops.io`` whose non-default types are checked against an explicit allow-list;
- exposes ``feature_importance_map() -> [5 marks, 100 bins]`` (sums to 1), comparable with the
  simulator's ground-truth importance maps.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from scipy.optimize import minimize
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.validation import check_is_fitted

from chrombench.errors import ModelFormatError
from chrombench.models.contract import ChromModel, check_counts, fit_report
from chrombench.models.contract import TuningBudget

from .features import FEATURE_KINDS, importance_to_grid, make_features, n_features

# Types that skops does not trust by default but that a fitted estimator of ours legitimately holds.
# Anything else found in a saved file is refused before loading.
SKOPS_ALLOWED_TYPES = frozenset({"sklearn.tree._tree.Tree"})
ESTIMATOR_FILE = "estimator.skops"
BOOSTER_FILE = "booster.json"


class _ClassicalModel(ChromModel):
    """Shared plumbing: raw counts -> features -> P(on); subclasses fit and score feature matrices."""

    family: ClassVar[str] = "classical"
    seed_param: ClassVar[str] = "seed"
    device_param: ClassVar[None] = None
    explains: ClassVar[tuple[str, ...]] = ("importance",)

    def fit(self, train, valid=None, on_epoch=None) -> "_ClassicalModel":
        from chrombench.models.contract import validate_params

        validate_params(type(self), self.get_params(deep=False))
        F = make_features(self._record_input(train), self.features)
        y = np.asarray(train.y, dtype=np.int8)
        if valid is not None:
            valid = (make_features(check_counts(valid.X, "valid.X", self.input_shape()), self.features),
                     np.asarray(valid.y, dtype=np.int8))
        self._fit_features(F, y, valid)
        self.n_features_ = F.shape[1]
        return self

    def training_report(self) -> dict:
        check_is_fitted(self, "n_features_")
        return self._training_report()

    def _training_report(self) -> dict:
        return fit_report("complete", iterative=False)

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "n_features_")
        X = check_counts(X, shape=self.input_shape())
        p_on = np.clip(self._positive_probability(make_features(X, self.features)), 0.0, 1.0)
        return np.column_stack([1.0 - p_on, p_on])

    def feature_importance_map(self) -> np.ndarray | None:
        """Importance over ``[marks, bins]``, summing to 1 (see each class for what it measures)."""
        check_is_fitted(self, "n_features_")
        importance = self._feature_importance()
        n_bins, n_marks = self.input_shape()
        return None if importance is None else importance_to_grid(importance, self.features, n_bins, n_marks)

    # -- to implement -------------------------------------------------------------------------
    def _fit_features(self, F: np.ndarray, y: np.ndarray, valid: tuple | None) -> None:
        raise NotImplementedError  # pragma: no cover - abstract

    def _positive_probability(self, F: np.ndarray) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover - abstract

    def _feature_importance(self) -> np.ndarray | None:
        raise NotImplementedError  # pragma: no cover - abstract

    # -- persistence of scikit-learn estimators -----------------------------------------------
    def _save_estimator(self, directory: Path, estimator) -> dict:
        import skops.io

        skops.io.dump(estimator, directory / ESTIMATOR_FILE, compression=zipfile.ZIP_DEFLATED)
        return {"n_features": int(self.n_features_)}

    def _load_estimator(self, directory: Path, config: dict, expected_type: type):
        import skops.io

        path = directory / ESTIMATOR_FILE
        try:
            untrusted = set(skops.io.get_untrusted_types(file=path))
        except Exception as exc:  # a missing, truncated or foreign file: the user's to fix
            raise ModelFormatError(f"{path}: not a readable skops file ({exc})") from exc
        refused = sorted(untrusted - SKOPS_ALLOWED_TYPES)
        if refused:
            raise ModelFormatError(f"{path} holds types chrombench does not load: {', '.join(refused)}")
        estimator = skops.io.load(path, trusted=sorted(untrusted))
        if not isinstance(estimator, expected_type):
            raise ModelFormatError(f"{path} holds a {type(estimator).__name__}, expected {expected_type.__name__}")
        self._restore_n_features(config, directory)
        return estimator

    def _restore_n_features(self, config: dict, directory: Path) -> None:
        expected = n_features(self.features, *self.input_shape())
        if config.get("n_features") != expected:
            raise ModelFormatError(f"{directory} was fitted on {config.get('n_features')} features; "
                                   f"feature set {self.features!r} has {expected}")
        self.n_features_ = expected


def _suggest_features(trial, choices=FEATURE_KINDS) -> str:
    return trial.suggest_categorical("features", list(choices))


# ---------------------------------------------------------------------------------------------
# SVM
# ---------------------------------------------------------------------------------------------

def fit_platt(score: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Platt scaling: ``P(on) = sigmoid(a * score + b)`` by maximum likelihood.

    Uses Platt's smoothed targets ((N+ + 1)/(N+ + 2) and 1/(N- + 2)) instead of 0/1 so that
    separable scores do not push ``a`` to infinity.
    """
    score = np.asarray(score, dtype=np.float64)
    n_pos = float(np.sum(y == 1))
    n_neg = float(len(y) - n_pos)
    target = np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))

    def loss_and_grad(ab):
        z = ab[0] * score + ab[1]
        # cross-entropy -t*log(sig(z)) - (1-t)*log(1-sig(z)) = logaddexp(0, z) - t*z, stable for any z
        loss = np.sum(np.logaddexp(0.0, z) - target * z)
        residual = 0.5 * (1.0 + np.tanh(0.5 * z)) - target  # sigmoid(z) - t without overflow
        return loss, np.array([np.sum(residual * score), np.sum(residual)])

    start = np.array([1.0, np.log((n_pos + 1) / (n_neg + 1))])
    result = minimize(loss_and_grad, start, jac=True, method="BFGS")
    return float(result.x[0]), float(result.x[1])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


class SVMModel(_ClassicalModel):
    """RBF support vector machine on standardised features, with Platt-scaled probabilities.

    Default features: ``"windows"`` (50). The kernel cost grows with the feature count (fitting
    6,601 genes takes ~1.5 s on 50 features and ~10 s on all 500 bins), and Euclidean distances
    over 500 single-bin Poisson counts are dominated by noise, while 1 kb window means are smooth.

    Probabilities: ``SVC`` gives only a decision value (its ``probability=True`` is deprecated in
    scikit-learn 1.9). We fit Platt's sigmoid on out-of-fold decision values of ``calibration_folds``
    stratified folds of the training genes, then refit on all of them. So ``valid`` is not touched
    and ``predict_proba`` thresholded at 0.5 is a calibrated classifier. With too few genes per
    class for folds, the sigmoid is fitted on the in-sample decision values instead.

    ``gamma="scale"`` is resolved at fit time to ``1 / (n_features * var)`` of the standardised
    features (scikit-learn's rule), stored as ``gamma_``.
    """

    name: ClassVar[str] = "svm"
    parameter_count: ClassVar[int | None] = None  # counted after fit: it depends on the data
    description: ClassVar[str] = "RBF support vector machine on 1 kb window features (Platt-scaled)"
    # gamma is "scale" or a positive number
    param_ranges: ClassVar[dict[str, str]] = {"C": "(0, inf)", "gamma": "(0, inf)", "calibration_folds": "[1, inf)",
                                              "cache_size": "(0, inf)"}
    iterative: ClassVar[bool] = True
    tuning: ClassVar[dict] = {"quick": TuningBudget(8), "full": TuningBudget(12, 600.0)}

    def __init__(self, C: float = 1.0, gamma: float | str = "scale", features: str = "windows",
                 calibration_folds: int = 3, cache_size: float = 500.0, seed: int = 0):
        self.C = C
        self.gamma = gamma
        self.features = features
        self.calibration_folds = calibration_folds
        self.cache_size = cache_size
        self.seed = seed

    @classmethod
    def search_space(cls, trial) -> dict[str, Any]:
        return {
            "C": trial.suggest_float("C", 1e-2, 1e2, log=True),
            "gamma": trial.suggest_float("gamma", 1e-4, 1.0, log=True),
            # "flat" is left out: 500-dimensional RBF fits are too slow for a search
            "features": _suggest_features(trial, ("windows", "both")),
        }

    def _make_pipeline(self, gamma: float) -> Pipeline:
        return Pipeline([("scale", StandardScaler()),
                         ("svm", SVC(C=self.C, kernel="rbf", gamma=gamma, cache_size=self.cache_size))])

    def _fit_features(self, F, y, valid) -> None:
        if isinstance(self.gamma, str):
            if self.gamma != "scale":
                raise ValueError(f"gamma must be 'scale' or a positive number, not {self.gamma!r}")
            variance = StandardScaler().fit_transform(F).var()
            self.gamma_ = float(1.0 / (F.shape[1] * variance)) if variance > 0 else 1.0
        else:
            self.gamma_ = float(self.gamma)

        smallest_class = int(np.bincount(y, minlength=2).min())
        folds = min(int(self.calibration_folds), smallest_class)
        if folds >= 2:
            oof = np.empty(len(y), dtype=np.float64)
            splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.seed)
            for fit_idx, held_idx in splitter.split(F, y):
                fold_model = self._make_pipeline(self.gamma_).fit(F[fit_idx], y[fit_idx])
                oof[held_idx] = fold_model.decision_function(F[held_idx])
        self.pipeline_ = self._make_pipeline(self.gamma_).fit(F, y)
        if folds < 2:
            oof = self.pipeline_.decision_function(F)
        self.platt_ = fit_platt(oof, y)

    def _positive_probability(self, F):
        a, b = self.platt_
        return _sigmoid(a * self.pipeline_.decision_function(F) + b)

    def _training_report(self) -> dict:
        svc = self.pipeline_.named_steps["svm"]
        # libsvm runs without an iteration cap (max_iter=-1) until its tolerance is met
        return fit_report("tolerance", iterative=True, epochs_run=int(np.max(svc.n_iter_)))

    def _feature_importance(self) -> np.ndarray:
        """Mean |d decision / d feature| at the support vectors, in standardised units.

        RBF SVMs have no weights per feature and permutation importance needs data the model does
        not keep, so we use the analytic gradient of ``f(z) = sum_i c_i exp(-gamma |z - s_i|^2) + b``:
        ``df/dz = -2 gamma sum_i c_i K(z, s_i) (z - s_i)``, averaged in absolute value over the
        support vectors (the genes near the decision boundary, where the gradient matters).
        """
        svc = self.pipeline_.named_steps["svm"]
        S = svc.support_vectors_
        c = svc.dual_coef_.ravel()
        weighted_S = c[:, None] * S
        total = np.zeros(S.shape[1])
        for start in range(0, len(S), 512):  # chunks keep the kernel block at 512 x n_sv
            Z = S[start:start + 512]
            sq = (Z ** 2).sum(1)[:, None] + (S ** 2).sum(1)[None, :] - 2.0 * Z @ S.T
            K = np.exp(-self.gamma_ * np.maximum(sq, 0.0))
            grad = -2.0 * self.gamma_ * ((K @ c)[:, None] * Z - K @ weighted_S)
            total += np.abs(grad).sum(0)
        return total / len(S)

    def n_parameters(self) -> int:
        """Support vectors x features (the stored vectors) + dual coefficients + intercept + 2 Platt.

        Data-dependent: 0 before fit (``chrombench models list`` asks unfitted models).
        """
        if not hasattr(self, "pipeline_"):
            return 0
        n_sv = int(self.pipeline_.named_steps["svm"].support_vectors_.shape[0])
        return n_sv * self.n_features_ + n_sv + 1 + 2

    def _save_state(self, directory: Path) -> dict:
        extra = self._save_estimator(directory, self.pipeline_)
        return {**extra, "gamma_": self.gamma_, "platt": list(self.platt_)}

    def _load_state(self, directory: Path, config: dict) -> None:
        self.pipeline_ = self._load_estimator(directory, config, Pipeline)
        self.gamma_ = float(config["gamma_"])
        self.platt_ = tuple(float(v) for v in config["platt"])


# ---------------------------------------------------------------------------------------------
# Random forest
# ---------------------------------------------------------------------------------------------

class RandomForestModel(_ClassicalModel):
    """Random forest (bagged CART trees) on raw log1p features; trees need no standardisation.

    Default features: ``"both"`` (150): the 1 kb window means are denoised summaries a single
    split can use, and the central bins add 100 bp resolution around the TSS where promoter
    marks peak. All 500 bins cost three times as much per tree for mostly noisy single-bin splits.
    Probabilities are the trees' averaged leaf class frequencies. Importance: scikit-learn's
    impurity decrease (MDI) per feature.
    """

    name: ClassVar[str] = "random-forest"
    parameter_count: ClassVar[int | None] = None  # counted after fit: it depends on the data
    description: ClassVar[str] = "Random forest on 1 kb windows + central 100 bp bins"
    param_ranges: ClassVar[dict[str, str]] = {"n_estimators": "[1, inf)", "min_samples_leaf": "[1, inf)",
                                              "max_depth": "[1, inf)", "n_jobs": "[1, inf)"}
    # at quick size more trees buy nothing but time
    tuning: ClassVar[dict] = {"quick": TuningBudget(4, overrides={"n_estimators": 150}), "full": TuningBudget(10, 600.0)}

    def __init__(self, n_estimators: int = 300, max_depth: int | None = None, min_samples_leaf: int = 5,
                 max_features: str | float = "sqrt", features: str = "both", n_jobs: int = 2, seed: int = 0):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.features = features
        self.n_jobs = n_jobs
        self.seed = seed

    @classmethod
    def search_space(cls, trial) -> dict[str, Any]:
        return {
            "n_estimators": trial.suggest_int("n_estimators", 100, 600, step=100),
            "max_depth": trial.suggest_categorical("max_depth", [8, 16, 32, None]),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 32, log=True),
            "features": _suggest_features(trial),
        }

    def _fit_features(self, F, y, valid) -> None:
        self.forest_ = RandomForestClassifier(
            n_estimators=self.n_estimators, max_depth=self.max_depth, min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features, n_jobs=self.n_jobs, random_state=self.seed).fit(F, y)

    def _positive_probability(self, F):
        # scikit-learn sums the trees' votes from several threads in whatever order they finish,
        # which changes the last bits of the result between calls; one thread sums in tree order
        self.forest_.set_params(n_jobs=1)
        return self.forest_.predict_proba(F)[:, list(self.forest_.classes_).index(1)]

    def _feature_importance(self) -> np.ndarray:
        return self.forest_.feature_importances_

    def n_parameters(self) -> int:
        """Total number of tree nodes (each holds a split or a leaf value); 0 before fit."""
        if not hasattr(self, "forest_"):
            return 0
        return int(sum(tree.tree_.node_count for tree in self.forest_.estimators_))

    def _save_state(self, directory: Path) -> dict:
        return self._save_estimator(directory, self.forest_)

    def _load_state(self, directory: Path, config: dict) -> None:
        self.forest_ = self._load_estimator(directory, config, RandomForestClassifier)


# ---------------------------------------------------------------------------------------------
# XGBoost
# ---------------------------------------------------------------------------------------------

class XGBoostModel(_ClassicalModel):
    """Gradient-boosted trees (XGBoost ``hist``), early-stopped on the validation split's log loss.

    Default features: ``"both"`` (150), for the same reasons as the random forest. ``n_estimators``
    is the maximum number of boosting rounds; with ``valid`` given, training stops after
    ``early_stopping_rounds`` rounds without improvement and only the best rounds are kept
    (``best_iteration_``). Without ``valid``, all ``n_estimators`` rounds are trained. Importance:
    total split gain per feature.
    """

    name: ClassVar[str] = "xgboost"
    parameter_count: ClassVar[int | None] = None  # counted after fit: it depends on the data
    description: ClassVar[str] = "XGBoost (hist) on 1 kb windows + central 100 bp bins, early-stopped on valid"
    param_ranges: ClassVar[dict[str, str]] = {"n_estimators": "[1, inf)", "learning_rate": "(0, inf)",
                                              "max_depth": "[1, inf)", "subsample": "(0, 1]",
                                              "colsample_bytree": "(0, 1]", "min_child_weight": "[0, inf)",
                                              "early_stopping_rounds": "[1, inf)", "n_jobs": "[1, inf)"}
    iterative: ClassVar[bool] = True
    # deep trees x 2000 rounds took 20 s for one quick-size trial
    tuning: ClassVar[dict] = {"quick": TuningBudget(6, overrides={"n_estimators": 100}), "full": TuningBudget(16, 600.0)}

    def __init__(self, n_estimators: int = 1000, learning_rate: float = 0.05, max_depth: int = 4,
                 subsample: float = 0.8, colsample_bytree: float = 0.8, min_child_weight: float = 1.0,
                 early_stopping_rounds: int = 50, features: str = "both", n_jobs: int = 2, seed: int = 0):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.min_child_weight = min_child_weight
        self.early_stopping_rounds = early_stopping_rounds
        self.features = features
        self.n_jobs = n_jobs
        self.seed = seed

    @classmethod
    def search_space(cls, trial) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "max_depth": trial.suggest_int("max_depth", 2, 10),
            "n_estimators": trial.suggest_int("n_estimators", 100, 2000, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "features": _suggest_features(trial),
        }

    def _fit_features(self, F, y, valid) -> None:
        from xgboost import XGBClassifier

        # xgboost 3 takes early_stopping_rounds in the constructor; it needs an eval_set to act on
        stopping = self.early_stopping_rounds if valid is not None else None
        clf = XGBClassifier(
            n_estimators=self.n_estimators, learning_rate=self.learning_rate, max_depth=self.max_depth,
            subsample=self.subsample, colsample_bytree=self.colsample_bytree,
            min_child_weight=self.min_child_weight, tree_method="hist", objective="binary:logistic",
            eval_metric="logloss", early_stopping_rounds=stopping, n_jobs=self.n_jobs,
            random_state=self.seed, verbosity=0)
        clf.fit(F, y, eval_set=[valid] if valid is not None else None, verbose=False)
        booster = clf.get_booster()
        # keep only the rounds up to the best one, so that predictions, the saved file and the
        # parameter count all describe the same model
        self.best_iteration_ = int(clf.best_iteration) if stopping else self.n_estimators - 1
        self.rounds_run_ = int(booster.num_boosted_rounds())
        self.booster_ = booster[: self.best_iteration_ + 1]

    def _training_report(self) -> dict:
        rounds = int(getattr(self, "rounds_run_", self.best_iteration_ + 1))
        # early stopping ends before the cap; all rounds trained means it was still improving
        stopped = "patience" if rounds < int(self.n_estimators) else "cap"
        return fit_report(stopped, iterative=True, epochs_run=rounds, best_epoch=self.best_iteration_,
                          cap=int(self.n_estimators), patience=int(self.early_stopping_rounds))

    def _positive_probability(self, F):
        return np.asarray(self.booster_.inplace_predict(F), dtype=np.float64)

    def _feature_importance(self) -> np.ndarray:
        scores = self.booster_.get_score(importance_type="total_gain")  # {"f12": gain}, unused features absent
        importance = np.zeros(self.n_features_)
        for key, gain in scores.items():
            importance[int(key.lstrip("f"))] = gain
        return importance

    def n_parameters(self) -> int:
        """Total number of tree nodes in the kept rounds (each holds a split or a leaf value); 0 before fit."""
        if not hasattr(self, "booster_"):
            return 0
        return sum(len(tree.strip().splitlines()) for tree in self.booster_.get_dump())

    def _save_state(self, directory: Path) -> dict:
        self.booster_.save_model(str(directory / BOOSTER_FILE))
        return {"n_features": int(self.n_features_), "best_iteration_": self.best_iteration_}

    def _load_state(self, directory: Path, config: dict) -> None:
        from xgboost import Booster
        from xgboost.core import XGBoostError

        path = directory / BOOSTER_FILE
        try:
            self.booster_ = Booster(model_file=str(path))
        except XGBoostError as exc:
            raise ModelFormatError(f"{path}: not a readable XGBoost model ({exc})") from exc
        self.booster_.set_param({"nthread": self.n_jobs})
        self._restore_n_features(config, directory)
        self.best_iteration_ = int(config["best_iteration_"])


# ---------------------------------------------------------------------------------------------
# Logistic regression
# ---------------------------------------------------------------------------------------------

class LogisticRegressionModel(_ClassicalModel):
    """L2-regularised logistic regression on standardised features.

    Default features: ``"windows"`` (50). Window means are linear in the bins, so a linear model
    on them is a per-bin model whose weights are shared by 10 neighbouring bins: a smoothness prior
    that suits broad histone-mark signals. Free per-bin weights (``"flat"``) mostly fit Poisson
    noise: on the simremc tasks E003/E005/E066/E128 "windows" beat "flat" by 0.02-0.03 test AUROC.
    ``seed`` is accepted for a uniform interface; the lbfgs fit is deterministic.
    Importance: |coefficient| in standardised units.
    """

    name: ClassVar[str] = "logistic-regression"
    parameter_count: ClassVar[int | None] = 51
    description: ClassVar[str] = "L2 logistic regression on 1 kb window features"
    param_ranges: ClassVar[dict[str, str]] = {"C": "(0, inf)", "max_iter": "[1, inf)"}
    iterative: ClassVar[bool] = True
    tuning: ClassVar[dict] = {"quick": TuningBudget(8), "full": TuningBudget(16, 120.0)}

    def __init__(self, C: float = 1.0, features: str = "windows", max_iter: int = 1000, seed: int = 0):
        self.C = C
        self.features = features
        self.max_iter = max_iter
        self.seed = seed

    @classmethod
    def search_space(cls, trial) -> dict[str, Any]:
        return {
            "C": trial.suggest_float("C", 1e-4, 10.0, log=True),
            "features": _suggest_features(trial),
        }

    def _fit_features(self, F, y, valid) -> None:
        # l1_ratio=0 is the L2 penalty (``penalty=`` is deprecated since scikit-learn 1.8)
        self.pipeline_ = Pipeline([
            ("scale", StandardScaler()),
            ("logreg", LogisticRegression(C=self.C, l1_ratio=0.0, solver="lbfgs", max_iter=self.max_iter,
                                          random_state=self.seed)),
        ]).fit(F, y)

    def _positive_probability(self, F):
        classes = list(self.pipeline_.classes_)
        return self.pipeline_.predict_proba(F)[:, classes.index(1)]

    def _training_report(self) -> dict:
        n_iter = int(np.max(self.pipeline_.named_steps["logreg"].n_iter_))
        # lbfgs stops at its tolerance; reaching max_iter means it did not converge
        return fit_report("tolerance" if n_iter < int(self.max_iter) else "cap", iterative=True, epochs_run=n_iter,
                          cap=int(self.max_iter))

    def _feature_importance(self) -> np.ndarray:
        return np.abs(self.pipeline_.named_steps["logreg"].coef_.ravel())

    def n_parameters(self) -> int:
        """One coefficient per feature plus the intercept; known before fit."""
        if not hasattr(self, "pipeline_"):
            return n_features(self.features, *self.input_shape()) + 1
        logreg = self.pipeline_.named_steps["logreg"]
        return int(logreg.coef_.size + logreg.intercept_.size)

    def _save_state(self, directory: Path) -> dict:
        return self._save_estimator(directory, self.pipeline_)

    def _load_state(self, directory: Path, config: dict) -> None:
        self.pipeline_ = self._load_estimator(directory, config, Pipeline)
