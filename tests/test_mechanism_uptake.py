"""Mechanism uptake: regressing a model's predictions on the simulator's independent latent terms says
which mechanisms the output follows. The labels' own latent scores 1.0 on every mechanism, a score made
of the activity alone scores near 0, one made of the activity and one mechanism scores that mechanism
alone, a mechanism read backwards scores below 0, and a score's scale changes nothing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from chrombench.data import seal
from chrombench.data.simulate12 import MECHANISMS, label_latents
from chrombench.errors import ProtocolViolation
from chrombench.explain.uptake import mechanism_uptake, uptake_of_predictions


@pytest.fixture(scope="module")
def truth():
    return label_latents("E003")


def _score(truth, weights: dict[str, float]) -> np.ndarray:
    return sum(w * truth["coefficients"][k] * truth["latents"][k] for k, w in weights.items())


def test_the_labels_latent_carries_every_mechanism_exactly(truth):
    # s is exactly the weighted sum of the terms: the record of what made each label
    assert np.allclose(_score(truth, {k: 1.0 for k in truth["latents"]}), truth["s"])
    got = mechanism_uptake(truth["s"], truth["latents"], truth["coefficients"])
    assert set(got) == set(MECHANISMS)
    assert all(abs(v - 1.0) < 1e-9 for v in got.values())


def test_a_score_of_the_activity_alone_carries_no_mechanism(truth):
    rng = np.random.default_rng(0)
    score = _score(truth, {"v": 1.0}) + 0.3 * rng.standard_normal(len(truth["s"]))  # read through count noise
    got = mechanism_uptake(score, truth["latents"], truth["coefficients"])
    assert max(abs(v) for v in got.values()) < 0.15


def test_one_mechanism_read_shows_as_that_mechanism_only(truth):
    score = _score(truth, {"v": 1.0, "tss_drift": 1.0, "bivalent": -1.0})
    got = mechanism_uptake(10 * score + 3, truth["latents"], truth["coefficients"])  # any scale and offset
    assert got["tss_drift"] == pytest.approx(1.0, abs=1e-6)
    assert got["bivalent"] == pytest.approx(-1.0, abs=1e-6)  # read backwards
    assert all(abs(got[k]) < 1e-6 for k in MECHANISMS if k not in ("tss_drift", "bivalent"))


def test_predictions_by_gene_id_in_any_order_and_subset(truth):
    prob = 1 / (1 + np.exp(-truth["s"]))
    order = np.random.default_rng(1).permutation(len(prob))[:500]
    got = uptake_of_predictions(truth["gene_ids"][order], prob[order], truth)
    assert all(abs(v - 1.0) < 1e-6 for v in got.values())
    with pytest.raises(ValueError, match="'nope' is not a test gene"):
        uptake_of_predictions(np.array(["nope"] * 20), np.full(20, 0.5), truth)


def test_a_score_blind_to_the_activity_has_no_ratio(truth):
    got = mechanism_uptake(-truth["latents"]["v"], truth["latents"], truth["coefficients"])
    assert all(math.isnan(v) for v in got.values())


def test_a_task_whose_labels_carry_no_mechanism_reports_none():
    # E123's published DeepChrome AUROC is high enough that the activity alone sets its ceiling
    t = label_latents("E123")
    assert all(t["coefficients"][k] == 0 for k in MECHANISMS)
    got = mechanism_uptake(t["s"] + t["latents"]["tss_drift"], t["latents"], t["coefficients"])
    assert all(math.isnan(v) for v in got.values())


def test_the_latents_are_sealed_with_the_task():
    with seal.sealed("simremc", "E003"):
        with pytest.raises(ProtocolViolation):
            label_latents("E003")
