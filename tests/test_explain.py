"""Interpretation methods and their scores against a known answer."""

import numpy as np
import pytest

from chrombench.data.arrays import GroundTruth, Split
from chrombench.explain.scoring import (activity_correlation, cell_auroc, mark_rank_correlation, precision_at_k,
                                        random_baseline, score_interpretation)

K4ME3 = 3


def planted_task(n=600, seed=0):
    """Label 1 genes carry extra H3K4me3 at bins 45-55: the truth is exactly those cells."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(np.int8)
    X = rng.poisson(2.0, (n, 100, 5)).astype(np.int32)
    X[:, 45:56, K4ME3] += rng.poisson(6.0 * y[:, None], (n, 11))
    imp = np.zeros((n, 5, 100), np.float32)
    imp[:, K4ME3, 45:56] = 1 / 11
    ids = np.array([f"g{i:05d}" for i in range(n)])
    return Split(ids, X, y), GroundTruth(oracle_auroc=1.0, importance=imp, latent=y.astype(np.float32))


def test_perfect_and_random_scores():
    _, truth = planted_task(50)
    t = truth.importance
    perfect = score_interpretation(t, t)
    assert perfect["cell_auroc"] == 1.0 and perfect["precision_at_n_true"] == 1.0
    rnd = random_baseline(t)
    assert abs(rnd["cell_auroc"] - 0.5) < 0.05 and rnd["precision_at_n_true"] < 0.1
    # an interpretation that blames the wrong mark scores below random on cells
    wrong = np.roll(t, 1, axis=1)
    assert score_interpretation(wrong, t)["cell_auroc"] < 0.5
    assert np.nanmean(mark_rank_correlation(wrong, t)) < np.nanmean(mark_rank_correlation(t, t))


def test_hand_checkable_gene():
    truth = np.zeros((1, 5, 100))
    truth[0, 0, :2] = 0.5  # two important cells
    scores = np.zeros((1, 5, 100))
    scores[0, 0, 0] = 3  # one important cell ranked first,
    scores[0, 4, 7] = 2  # then an unimportant one
    scores[0, 0, 1] = 1  # then the other important one; 496 ties at 0 below
    assert precision_at_k(scores, truth)[0] == 0.5
    # positive ranks 500 and 498 out of 500, 498 negatives: (998 - 3) / (2 * 498)
    assert cell_auroc(scores, truth)[0] == pytest.approx((998 - 3) / (2 * 498))


def test_activity_correlation():
    rng = np.random.default_rng(1)
    act = rng.random((20, 100))
    on = np.arange(20) < 10
    res = activity_correlation(act * 2 + 1, act, on)
    assert res["pearson_mean"] == pytest.approx(1.0) and res["n_genes"] == 10
    assert abs(activity_correlation(rng.random((20, 100)), act, on)["pearson_mean"]) < 0.3


def test_importance_of_a_linear_model_finds_the_planted_cells(tmp_path):
    from chrombench.explain.report import explain_split
    from chrombench.models import make_model

    split, truth = planted_task()
    model = make_model("logistic-regression").fit(split, split)
    summary = explain_split(model, split, tmp_path, ["importance"], truth=truth, heatmaps=2)
    scores = summary["methods"]["importance"]["scores"]
    assert scores["cell_auroc"] > 0.9 > summary["random_baseline"]["cell_auroc"] + 0.3
    for name in ("importance_cells.parquet", "importance_marks.csv", "importance_profiles.png", "scores.csv"):
        assert (tmp_path / name).stat().st_size > 0
    import pandas as pd

    cells = pd.read_parquet(tmp_path / "importance_cells.parquet")
    assert list(cells.columns) == ["gene_id", "mark", "bin", "score"] and len(cells) == len(split) * 500
    assert cells.gene_id.iloc[0] == "g00000"


def test_imported_reference_attention_is_written_exactly(tmp_path):
    """alpha and beta in explain's tables equal the reference implementation's to 1e-5."""
    import pandas as pd
    import torch
    from test_attentivechrome import ReferenceAttentiveChrome, heavy_tailed_counts

    from chrombench.explain.report import explain_split
    from chrombench.models.weights import import_reference_weights

    torch.manual_seed(3)
    ref = ReferenceAttentiveChrome().eval()
    torch.save(ref.state_dict(), tmp_path / "E003_attchrome_avgAUC_model.pt")
    X = heavy_tailed_counts(12, seed=4)
    with torch.no_grad():
        _, alpha_ref, beta_ref = ref(X)
    model = import_reference_weights(tmp_path / "E003_attchrome_avgAUC_model.pt", device="cpu")
    split = Split(np.array([f"{i:06d}" for i in range(12)]), X, np.arange(12, dtype=np.int8) % 2)
    explain_split(model, split, tmp_path / "out", ["attention"], heatmaps=2)
    cells = pd.read_parquet(tmp_path / "out" / "attention_cells.parquet")
    marks = pd.read_csv(tmp_path / "out" / "attention_marks.csv", dtype={"gene_id": str})
    alpha = cells["alpha"].to_numpy().reshape(12, 5, 100)
    beta = marks["beta"].to_numpy().reshape(12, 5)
    np.testing.assert_allclose(alpha, np.asarray(alpha_ref), atol=1e-5, rtol=0)
    np.testing.assert_allclose(beta, np.asarray(beta_ref), atol=1e-5, rtol=0)
    assert marks.gene_id.iloc[0] == "000000"


@pytest.mark.slow
@pytest.mark.parametrize("method", ["attention", "saliency", "integrated-gradients"])
def test_neural_methods_find_the_planted_promoter(method, single_thread_torch):
    """A small AttentiveChrome trained on a planted task points every method at H3K4me3 near the TSS."""
    from chrombench.explain.methods import explain
    from chrombench.models import make_model

    split, truth = planted_task(n=400, seed=2)
    model = make_model("attentivechrome", epochs=6, batch_size=32, lr=5e-3, device="cpu", seed=0)
    model.fit(split, split)
    cells, marks = explain(model, split.X, method, steps=8)
    assert cells.shape == (400, 5, 100) and marks.shape == (400, 5)
    assert np.isfinite(cells).all() and (cells >= 0).all()
    assert int(np.argmax(marks.mean(axis=0))) == K4ME3
    scores = score_interpretation(cells, truth.importance)
    assert scores["cell_auroc"] > random_baseline(truth.importance)["cell_auroc"] + 0.2


def test_unsupported_method_is_a_clear_error():
    from chrombench.errors import ChrombenchError
    from chrombench.explain.methods import explain
    from chrombench.models import make_model

    split, _ = planted_task(60)
    model = make_model("logistic-regression").fit(split, split)
    with pytest.raises(ChrombenchError, match="does not support --method attention; it supports: importance"):
        explain(model, split.X, "attention")


def test_cli_with_an_activity_track(tmp_path):
    """--hactive: H3K4me3 scores correlate with an activity track shaped like the planted signal."""
    from click.testing import CliRunner

    from chrombench.cli import main
    from chrombench.data.csvformat import write_split
    from chrombench.models import make_model

    split, _ = planted_task(300, seed=5)
    make_model("logistic-regression", features="flat").fit(split, split).save(tmp_path / "model")
    write_split(tmp_path / "genes.csv", split)
    act = np.zeros((300, 100))
    act[:, 45:56] = 1.0
    rows = [",".join([g] + [f"{v:g}" for v in a]) for g, a in zip(split.gene_ids, act)]
    (tmp_path / "act.csv").write_text("\n".join(rows) + "\n")
    res = CliRunner().invoke(main, ["explain", str(tmp_path / "model"), str(tmp_path / "genes.csv"), "--hactive",
                                    str(tmp_path / "act.csv"), "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    r = float(res.output.split("activity r=")[1].split()[0])
    assert r > 0.5
    bad = tmp_path / "bad.csv"
    bad.write_text("g1,1,2\n")
    res = CliRunner().invoke(main, ["explain", str(tmp_path / "model"), str(tmp_path / "genes.csv"), "--hactive",
                                    str(bad), "-o", str(tmp_path / "out2")])
    assert res.exit_code == 2 and "bad.csv, line 1: found 3 columns, expected 101" in res.output


def _activity_rows(genes, n=3):
    return [",".join([g] + ["1"] * 100) for g in genes[:n]]


@pytest.mark.parametrize("edit, words", [
    (lambda r: ["gene_id," + ",".join(f"bin{k}" for k in range(1, 101))] + r, "line 1: not a number: 'bin1' (a header row"),
    (lambda r: [r[0], r[1].replace(",1,", ",x,", 1), r[2]], "line 2: not a number: 'x'"),
    (lambda r: [r[0], r[1], r[2].replace(",1,", ",,", 1)], "line 3: missing value"),
    (lambda r: [r[0], r[1].replace(",1,", ",-2,", 1), r[2]], "line 2: bin 1 is negative: -2"),
    (lambda r: [r[0], r[1].replace(",1,", ",nan,", 1), r[2]], "line 2: bin 1 is not finite"),
    (lambda r: r + [r[0]], "line 4: duplicate gene 'g00000' (first seen at line 1)"),
])
def test_a_bad_activity_track_names_file_and_line(tmp_path, edit, words):
    from chrombench.errors import DataFormatError
    from chrombench.explain.report import read_hactive

    genes = [f"g{i:05d}" for i in range(3)]
    path = tmp_path / "act.csv"
    path.write_text("\n".join(edit(_activity_rows(genes))) + "\n")
    with pytest.raises(DataFormatError) as err:
        read_hactive(path, genes)
    assert str(err.value).startswith(f"{path}, ") and words in str(err.value)


def test_integrated_gradients_reports_how_far_it_is_from_complete(single_thread_torch):
    """Completeness: attributions sum to f(x) - f(baseline); the gap shrinks as steps grow."""
    from chrombench.explain.methods import explain
    from chrombench.models import make_model

    split, _ = planted_task(n=200, seed=4)
    model = make_model("deepchrome", epochs=2, batch_size=32, device="cpu", seed=0).fit(split, split)
    gaps = {}
    for steps in (1, 64):
        diag = {}
        explain(model, split.X[:40], "integrated-gradients", steps=steps, diagnostics=diag)
        gaps[steps] = float(np.median(diag["completeness_gap"]))
    assert gaps[64] < 0.05 and gaps[64] < gaps[1]


def test_cli_refuses_zero_steps_and_zero_genes(tmp_path):
    from click.testing import CliRunner

    from chrombench.cli import main
    from chrombench.data.csvformat import write_split
    from chrombench.models import make_model

    split, _ = planted_task(40)
    make_model("logistic-regression").fit(split, split).save(tmp_path / "model")
    write_split(tmp_path / "genes.csv", split)
    for flag in ("--steps", "--genes"):
        res = CliRunner().invoke(main, ["explain", str(tmp_path / "model"), str(tmp_path / "genes.csv"), flag, "0",
                                        "-o", str(tmp_path / "out")])
        assert res.exit_code == 2 and "0 is not in the range x>=1" in res.output
