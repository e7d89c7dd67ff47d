"""Any number of marks, any bin count: a task from `chrombench data build` need not be 5 x 100.

Every zoo model fits on 7 marks x 40 bins (HM-CRNN's original shape), predicts, explains in the
task's shape, saves the shape it was fitted on and loads it back; an input of another shape is
refused with a message that says which shape the model takes. The published AttentiveChrome
weights are tied to the archive's 100 x 5, and say so.
"""

from __future__ import annotations

import numpy as np
import pytest

from chrombench.data.arrays import Split
from chrombench.errors import ChrombenchError
from chrombench.models.io import load_model, read_config
from chrombench.models.registry import make_model, zoo_names

MARKS7 = ("H3K27me3", "H3K36me3", "H3K4me1", "H3K4me3", "H3K9me3", "H3K27ac", "H3K9ac")
BINS = 40


def split(n: int, seed: int) -> Split:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(np.int8)
    X = rng.poisson(1.0, size=(n, BINS, len(MARKS7))).astype(np.int32)
    X[:, 15:25, 3] += 6 * y[:, None]  # H3K4me3 at the TSS marks the expressed genes
    return Split(np.array([f"g{seed}-{i}" for i in range(n)]), X, y, MARKS7)


QUICK = {"epochs": 2, "patience": 1, "batch_size": 32}


@pytest.mark.slow
@pytest.mark.parametrize("name", zoo_names())
def test_every_zoo_model_takes_the_tasks_shape(name, tmp_path, single_thread_torch):
    cls = type(make_model(name))
    params = {k: v for k, v in QUICK.items() if k in cls().get_params()}
    model = make_model(name, **params)
    train, valid, test = split(96, 0), split(48, 1), split(40, 2)
    model.fit(train, valid)
    proba = model.predict_proba(test.X)
    assert proba.shape == (40, 2) and np.allclose(proba.sum(1), 1)
    assert model.input_shape() == (BINS, len(MARKS7)) and model.input_marks() == MARKS7
    if hasattr(model, "attention") and getattr(model, "has_attention", True):
        alpha, beta = model.attention(test.X)
        assert alpha.shape == (40, len(MARKS7), BINS) and beta.shape == (40, len(MARKS7))
    if hasattr(model, "feature_importance_map"):
        grid = model.feature_importance_map()
        assert grid is None or grid.shape == (len(MARKS7), BINS)
    with pytest.raises(ChrombenchError, match=f"{BINS} bins, {len(MARKS7)} marks"):
        model.predict_proba(np.zeros((3, 100, 5), np.int32))  # the archive's shape: not this model's
    model.save(tmp_path / "m")
    assert read_config(tmp_path / "m")["input"] == {"bins": BINS, "marks": list(MARKS7), "counts": "raw"}
    again = load_model(tmp_path / "m")
    assert again.input_shape() == (BINS, len(MARKS7))
    np.testing.assert_allclose(again.predict_proba(test.X), proba, rtol=1e-5, atol=1e-6)


def test_reference_weights_are_tied_to_the_archive_shape():
    model = make_model("attentivechrome")
    state = model.reference_shapes()
    import torch

    model.load_reference_state_dict({k: torch.zeros(v) for k, v in state.items()})
    assert model.input_shape() == (100, 5)
    with pytest.raises(ChrombenchError, match="100 bins, 5 marks"):
        model.predict_proba(np.zeros((2, BINS, len(MARKS7)), np.int32))


def test_archive_csvs_meet_models_and_datasets_of_other_marks_with_a_clear_refusal(tmp_path):
    """Same 100 x 5 shape, other marks: predicting archive CSVs with such a model, or exporting such a
    dataset as archive CSVs, would silently mix marks up; both are refused."""
    from click.testing import CliRunner

    from chrombench.cli import main
    from chrombench.data import importer
    from chrombench.data.csvformat import write_split

    rng = np.random.default_rng(0)
    marks = ("H3K4me3", "H3K27me3", "H3K36me3", "H3K4me1", "H3K9me3")  # the archive's, in another order

    def sp(n, seed):
        y = np.arange(n) % 2
        return Split(np.array([f"g{seed}-{i}" for i in range(n)]), rng.poisson(1 + 3 * y[:, None, None],
                                                                              size=(n, 100, 5)).astype(np.int32),
                     y.astype(np.int8), marks)

    train = sp(60, 0)
    make_model("logistic-regression").fit(train).save(tmp_path / "m")
    archive = Split(train.gene_ids, train.X, train.y)  # the archive's mark order
    write_split(tmp_path / "genes.csv", archive)
    res = CliRunner().invoke(main, ["predict", str(tmp_path / "m"), str(tmp_path / "genes.csv"), "-o",
                                    str(tmp_path / "p.csv")])
    assert res.exit_code != 0 and "fitted on marks H3K4me3, H3K27me3" in res.output
    with pytest.raises(Exception, match="archive format holds 100 bins x H3K27me3"):
        write_split(tmp_path / "x.csv", train)
    importer.save_dataset("reordered", "1", {"reordered": ({"train": train, "valid": sp(30, 1), "test": sp(30, 2)}, {})},
                       source="test")
    res = CliRunner().invoke(main, ["data", "export", "reordered", "-o", str(tmp_path / "out")])
    assert res.exit_code != 0 and "cannot be exported" in res.output and not (tmp_path / "out").exists()
