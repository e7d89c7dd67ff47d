"""The evaluator agrees with scikit-learn and refuses inputs outside its contract."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from chrombench.evaluate import Evaluator, auprc, auroc


def test_matches_sklearn_including_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    s = np.round(rng.random(500) + 0.3 * y, 1)  # many ties
    assert auroc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert auprc(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)


def test_hand_checkable():
    assert auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    res = Evaluator().eval([0, 1, 1, 0], [0.2, 0.9, 0.6, 0.7])
    assert res["accuracy"] == 0.75 and res["auroc"] == 0.75
    assert not np.isnan(res["auprc"])  # the reference's AUPR is always NaN


@pytest.mark.parametrize("y,s,msg", [
    ([0, 1, 2], [0.1, 0.2, 0.3], "only 0 and 1"),
    ([1, 1, 1], [0.1, 0.2, 0.3], "single class"),
    ([0, 1], [0.1], "entries"),
    ([0, 1], [0.1, float("nan")], "NaN"),
    ([[0, 1]], [[0.1, 0.2]], "1-D"),
])
def test_contract_violations(y, s, msg):
    with pytest.raises(ValueError, match=msg):
        Evaluator().eval(y, s)
