"""The classical baselines (SVM, random forest, XGBoost, logistic regression) behind the ChromModel contract."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from chrombench import MARKS, N_BINS, N_MARKS
from chrombench.baselines import classical
from chrombench.baselines.features import (FEATURE_KINDS, feature_cells, importance_to_grid, make_features,
                                           n_features)
from chrombench.data.arrays import Split
from chrombench.errors import DataFormatError, ModelFormatError, UnknownNameError
from chrombench.evaluate import accuracy, auroc
from chrombench.models.io import load_model
from chrombench.models.registry import get_model_class

from toydata import read_toy  # noqa: E402

MODEL_CLASSES = [classical.SVMModel, classical.RandomForestModel, classical.XGBoostModel,
                 classical.LogisticRegressionModel]
IDS = [cls.name for cls in MODEL_CLASSES]
H3K4ME3 = MARKS.index("H3K4me3")
PLANTED_BINS = slice(45, 55)
# Smaller ensembles keep each test near a second. One XGBoost thread: on a few hundred genes,
# two OpenMP threads spend most of their time waiting for each other when the machine is busy.
FAST = {"random-forest": {"n_estimators": 100}, "xgboost": {"n_estimators": 300, "n_jobs": 1}}


def planted_split(n: int, seed: int) -> Split:
    """Poisson background at the toy sample's per-mark scale; expressed genes get extra H3K4me3 at bins 45-54.

    10% of labels are flipped, so no model can be perfect and probabilities must stay graded.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(np.int8)
    X = rng.poisson([3.0, 1.7, 2.3, 20.0, 1.4], size=(n, N_BINS, N_MARKS)).astype(np.int32)
    X[y == 1, PLANTED_BINS, H3K4ME3] += rng.poisson(12.0, size=(int(y.sum()), 10)).astype(np.int32)
    flip = rng.random(n) < 0.1
    y[flip] = 1 - y[flip]
    return Split(np.array([f"{seed}{i:05d}" for i in range(n)]), X, y)


@pytest.fixture(scope="module")
def planted():
    return {"train": planted_split(400, 1), "valid": planted_split(200, 2), "test": planted_split(400, 3)}


@pytest.fixture(scope="module")
def fitted(planted):
    """One model per class fitted on the planted task, shared by the tests that only read it."""
    cache = {}

    def get(cls):
        if cls not in cache:
            cache[cls] = cls(**FAST.get(cls.name, {})).fit(planted["train"], planted["valid"])
        return cache[cls]
    return get


# -- features ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", FEATURE_KINDS)
def test_each_feature_is_the_mean_log1p_count_of_the_cells_it_names(kind):
    X = np.random.default_rng(0).poisson(3.0, size=(4, N_BINS, N_MARKS)).astype(np.int32)
    F = make_features(X, kind)
    cells = feature_cells(kind)
    assert F.shape == (4, n_features(kind)) == (4, len(cells))
    expected = np.stack([np.log1p(X[:, start:stop, mark]).mean(axis=1) for mark, start, stop in cells], axis=1)
    np.testing.assert_allclose(F, expected, rtol=1e-6)


def test_feature_sets_have_the_documented_sizes_and_cover_the_grid():
    assert {k: n_features(k) for k in FEATURE_KINDS} == {"windows": 50, "flat": 500, "both": 150}
    for kind in ("windows", "flat"):
        covered = np.zeros((N_MARKS, N_BINS), dtype=int)
        for mark, start, stop in feature_cells(kind):
            covered[mark, start:stop] += 1
        assert (covered == 1).all(), kind  # every (mark, bin) cell in exactly one feature


def test_importance_to_grid_spreads_a_window_over_its_bins_and_sums_to_one():
    importance = np.zeros(n_features("windows"))
    target = feature_cells("windows").index((H3K4ME3, 40, 50))
    importance[target] = 3.0
    grid = importance_to_grid(importance, "windows")
    assert grid.shape == (N_MARKS, N_BINS)
    assert grid.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(grid[H3K4ME3, 40:50], 0.1)
    assert grid.sum() == pytest.approx(grid[H3K4ME3, 40:50].sum())


def test_unknown_feature_set_names_the_closest_one():
    with pytest.raises(UnknownNameError, match="windows"):
        feature_cells("window")
    with pytest.raises(UnknownNameError, match="did you mean"):
        classical.SVMModel(features="window").fit(read_toy("train"))


# -- the contract, for every model ------------------------------------------------------------

@pytest.mark.parametrize("cls", MODEL_CLASSES, ids=IDS)
def test_registered_under_its_zoo_name_as_a_classical_model(cls):
    assert get_model_class(cls.name) is cls
    assert cls.family == "classical" and cls.description


@pytest.mark.parametrize("cls", MODEL_CLASSES, ids=IDS)
def test_fits_and_predicts_on_the_toy_sample(cls):
    train, valid, test = read_toy("train"), read_toy("valid"), read_toy("test")
    model = cls(**FAST.get(cls.name, {})).fit(train, valid)
    proba = model.predict_proba(test.X)
    assert proba.shape == (len(test), 2)
    assert np.isfinite(proba).all() and (proba >= 0).all() and (proba <= 1).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(np.unique(model.predict(test.X))) <= {0, 1}
    assert model.n_parameters() > 0


@pytest.mark.parametrize("cls", MODEL_CLASSES, ids=IDS)
def test_learns_a_planted_signal_with_calibrated_probabilities(cls, fitted, planted):
    test = planted["test"]
    p_on = fitted(cls).predict_proba(test.X)[:, 1]
    # the flipped 10% of labels cap accuracy near 0.9; a model that finds the signal gets close
    assert auroc(test.y, p_on) > 0.85
    assert accuracy(test.y, p_on) > 0.8  # thresholding at 0.5 works: probabilities are calibrated


@pytest.mark.parametrize("cls", MODEL_CLASSES, ids=IDS)
def test_importance_map_points_at_the_planted_mark_and_bins(cls, fitted):
    grid = fitted(cls).feature_importance_map()
    assert grid.shape == (N_MARKS, N_BINS)
    assert grid.sum() == pytest.approx(1.0) and (grid >= 0).all()
    assert int(np.argmax(grid.sum(axis=1))) == H3K4ME3
    # window features smear the signal over bins 40-59, so compare that stretch with the rest
    near = np.zeros_like(grid, dtype=bool)
    near[H3K4ME3, 40:60] = True
    assert grid[near].mean() > 5 * grid[~near].mean()  # a map blind to the signal gives about 1


@pytest.mark.parametrize("cls", MODEL_CLASSES, ids=IDS)
def test_save_and_load_give_identical_probabilities(cls, fitted, planted, tmp_path):
    model = fitted(cls)
    model.save(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["model"] == cls.name and config["params"] == model.get_params()
    loaded = load_model(tmp_path / "model")
    assert type(loaded) is cls and loaded.get_params() == model.get_params()
    X = planted["test"].X
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.feature_importance_map(), model.feature_importance_map())
    assert loaded.n_parameters() == model.n_parameters()


@pytest.mark.parametrize("cls", MODEL_CLASSES, ids=IDS)
def test_same_seed_gives_identical_predictions(cls, planted):
    small = planted["train"].subset(np.arange(200))
    params = {**FAST.get(cls.name, {}), "seed": 7}
    first = cls(**params).fit(small, planted["valid"]).predict_proba(planted["test"].X)
    again = cls(**params).fit(small, planted["valid"]).predict_proba(planted["test"].X)
    np.testing.assert_array_equal(first, again)
    if cls in (classical.RandomForestModel, classical.XGBoostModel):  # models whose fit samples
        other = cls(**{**params, "seed": 8}).fit(small, planted["valid"]).predict_proba(planted["test"].X)
        assert not np.array_equal(first, other)


@pytest.mark.parametrize("cls", MODEL_CLASSES, ids=IDS)
def test_sklearn_params_and_clone(cls, planted):
    model = cls(features="windows")
    assert model.get_params()["features"] == "windows"
    copy = clone(model)
    assert copy is not model and copy.get_params() == model.get_params()
    copy.set_params(features="both", seed=3)
    assert copy.get_params()["features"] == "both" and model.get_params()["features"] == "windows"
    copy.set_params(**FAST.get(cls.name, {})).fit(planted["train"].subset(np.arange(100)))
    assert copy.n_features_ == n_features("both")
    assert not hasattr(clone(copy), "n_features_")  # clone drops fitted state


@pytest.mark.parametrize("cls", MODEL_CLASSES, ids=IDS)
def test_search_space_suggests_valid_constructor_arguments(cls):
    optuna = pytest.importorskip("optuna")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        params = cls.search_space(study.ask())
        assert params and set(params) <= set(cls().get_params())
        assert params["features"] in FEATURE_KINDS
        cls(**params)


@pytest.mark.parametrize("cls", MODEL_CLASSES, ids=IDS)
def test_predict_checks_its_input(cls, fitted):
    with pytest.raises(NotFittedError):
        cls().predict_proba(np.zeros((2, N_BINS, N_MARKS), dtype=np.int32))
    with pytest.raises(DataFormatError, match="100 bins"):
        fitted(cls).predict_proba(np.zeros((2, N_MARKS, N_BINS), dtype=np.int32))  # marks and bins swapped


def test_refuses_a_saved_estimator_holding_a_type_outside_the_allow_list(fitted, tmp_path):
    import skops.io
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    fitted(classical.LogisticRegressionModel).save(tmp_path / "model")
    # a file that would call os.getcwd while predicting: loading must refuse it, not run it
    hostile = Pipeline([("f", FunctionTransformer(os.getcwd))])
    skops.io.dump(hostile, tmp_path / "model" / classical.ESTIMATOR_FILE)
    with pytest.raises(ModelFormatError, match="getcwd"):
        load_model(tmp_path / "model")


def test_refuses_a_damaged_saved_model(fitted, tmp_path):
    fitted(classical.RandomForestModel).save(tmp_path / "forest")
    (tmp_path / "forest" / classical.ESTIMATOR_FILE).write_bytes(b"not a zip file")
    with pytest.raises(ModelFormatError, match="skops"):
        load_model(tmp_path / "forest")
    fitted(classical.XGBoostModel).save(tmp_path / "xgb")
    (tmp_path / "xgb" / classical.BOOSTER_FILE).write_text("{")
    with pytest.raises(ModelFormatError, match="XGBoost"):
        load_model(tmp_path / "xgb")


def test_xgboost_early_stops_on_valid_and_keeps_only_the_best_rounds(planted):
    model = classical.XGBoostModel(n_estimators=2000, learning_rate=0.3).fit(planted["train"], planted["valid"])
    assert model.best_iteration_ < 1999
    assert model.booster_.num_boosted_rounds() == model.best_iteration_ + 1
    no_valid = classical.XGBoostModel(n_estimators=30).fit(planted["train"])
    assert no_valid.booster_.num_boosted_rounds() == 30


def test_svm_probabilities_do_not_depend_on_the_validation_split(planted):
    # calibration uses folds of train only, so the engine passing valid or not changes nothing
    train = planted["train"].subset(np.arange(200))
    with_valid = classical.SVMModel().fit(train, planted["valid"]).predict_proba(planted["test"].X)
    without = classical.SVMModel().fit(train).predict_proba(planted["test"].X)
    np.testing.assert_array_equal(with_valid, without)


def test_logistic_regression_counts_one_coefficient_per_feature_plus_intercept(fitted):
    assert fitted(classical.LogisticRegressionModel).n_parameters() == n_features("windows") + 1
    assert classical.LogisticRegressionModel(features="flat").n_parameters() == n_features("flat") + 1


@pytest.mark.parametrize("cls", MODEL_CLASSES, ids=IDS)
def test_parameter_count_is_available_before_fit_for_the_model_listing(cls, fitted):
    assert cls().n_parameters() >= 0  # `chrombench models list` asks unfitted models
    assert fitted(cls).n_parameters() > 0


def test_svm_gamma_is_scale_or_a_number():
    with pytest.raises(ValueError, match="gamma"):
        classical.SVMModel(gamma="auto").fit(read_toy("train"))
    assert classical.SVMModel(gamma=0.05).fit(read_toy("train")).gamma_ == 0.05
