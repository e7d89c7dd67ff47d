"""simremc must be a credible stand-in for the real archive, and deterministic."""


import numpy as np
import pytest

from chrombench import MARKS
from chrombench.data import simulate
from chrombench.data.csvformat import read_split
from chrombench.data.load import load_task
from chrombench.evaluate import auroc

from toydata import TOY  # noqa: E402
K27, K36, K4ME1, K4ME3, K9 = range(5)


@pytest.fixture(scope="module")
def home(module_home):
    return module_home


@pytest.fixture(scope="module")
def e003(home):
    return load_task("E003")


@pytest.fixture(scope="module")
def e123(home):
    return load_task("E123")


def test_archive_shapes_and_balanced_labels(e003):
    assert [len(e003.train), len(e003.valid), len(e003.test)] == [6601, 6601, 6600]
    assert e003.train.X.shape == (6601, 100, 5) and e003.train.X.dtype == np.int32
    assert all(len(g) == 6 and g.isdigit() for g in e003.train.gene_ids[:50])  # zero-padded strings
    all_y = np.concatenate([e003.train.y, e003.valid.y, e003.test.y])
    assert abs(all_y.mean() - 0.5) < 0.001  # median threshold over all genes
    assert not set(e003.train.gene_ids) & set(e003.test.gene_ids)
    assert e003.dataset.simulated and e003.dataset.name == "simremc"


def test_same_seed_same_data_other_seed_other_data(home, e003):
    again, _ = simulate.simulate_task("E003", "ESC", True, 0.77, seed=0)
    assert again["train"].digest() == e003.train.digest()
    other, _ = simulate.simulate_task("E003", "ESC", True, 0.77, seed=1)
    assert other["train"].digest() != e003.train.digest()


def test_calibrated_to_the_real_sample(e003, e123):
    toy = [read_split(TOY / f"{s}.csv") for s in ("train", "valid", "test")]
    tX = np.concatenate([s.X for s in toy]).astype(float)
    ty = np.concatenate([s.y for s in toy])
    # Per-mark class means against what the real sample allows: 10 ON and 20 OFF genes with heavy
    # tails pin a mean down only to its bootstrap 95% interval (H3K4me3 OFF: 9.8 to 28.5), and the
    # sample's cell type is unknown, so a simulated cell type may sit up to 1.5x outside it.
    rng = np.random.default_rng(0)
    for j, mark in enumerate(MARKS):
        for cls in (0, 1):
            per_gene = tX[ty == cls][:, :, j].mean(axis=1)
            boot = [rng.choice(per_gene, len(per_gene)).mean() for _ in range(2000)]
            lo, hi = np.percentile(boot, [2.5, 97.5])
            for data in (e003, e123):
                X, y = np.asarray(data.train.X, float), data.train.y
                sim = X[y == cls][:, :, j].mean()
                assert lo / 1.5 < sim < hi * 1.5, f"{data.task} {mark} class {cls}: sim {sim:.2f}, real CI [{lo:.2f}, {hi:.2f}]"
    # the direction of the ON/OFF differences of the informative marks matches the real sample
    X, y = np.asarray(e123.train.X, float), e123.train.y
    on, off = X[y == 1].mean(axis=(0, 1)), X[y == 0].mean(axis=(0, 1))
    real_on, real_off = tX[ty == 1].mean(axis=(0, 1)), tX[ty == 0].mean(axis=(0, 1))
    for j in (K27, K36, K4ME3, K9):
        assert np.sign(on[j] - off[j]) == np.sign(real_on[j] - real_off[j]), MARKS[j]
    # heavy tails: most bins small, a few very large
    k4 = X[:, :, K4ME3]
    assert np.median(k4) < 5 and k4.max() > 300
    # the shape, not only the means: zero shares, upper quantiles, promoters without any H3K4me3
    for data in (e003, e123):
        X, y = np.asarray(data.train.X, float), data.train.y
        for j, mark in enumerate(MARKS):
            sim_v, real_v = X[:, :, j].ravel(), tX[:, :, j].ravel()
            assert abs(np.mean(sim_v == 0) - np.mean(real_v == 0)) < 0.1, f"{data.task} {mark} share of zero bins"
            for q in (90, 99):
                sim_q, real_q = np.percentile(sim_v, q), np.percentile(real_v, q)
                assert real_q / 2 <= sim_q <= real_q * 2, f"{data.task} {mark} p{q}: sim {sim_q} vs real {real_q}"
    def no_peak(X, y, cls):
        return np.mean(np.asarray(X, float)[y == cls][:, 45:56, K4ME3].mean(axis=1) < 2)
    for cls in (0, 1):  # real: 30% of ON and 40% of OFF genes have no H3K4me3 at the TSS
        assert abs(no_peak(e123.train.X, e123.train.y, cls) - no_peak(tX, ty, cls)) < 0.15, f"class {cls}"


def test_planted_biology(e003, e123):
    X, y = np.asarray(e123.train.X, float), e123.train.y
    on = X[y == 1]
    k4_profile = on[:, :, K4ME3].mean(axis=0)
    assert abs(int(np.argmax(k4_profile)) - 50) <= 5, "H3K4me3 must peak at the TSS"
    k36 = on[:, :, K36].mean(axis=0)
    assert k36[55:90].mean() > 1.5 * k36[10:45].mean(), "H3K36me3 rises over the gene body downstream"
    # broad repressive domains: H3K27me3 counts 20 bins apart stay correlated, H3K4me3 peaks don't
    def lag_corr(j, lag=20):
        a = np.log1p(X[:, 10:70, j]).ravel()
        b = np.log1p(X[:, 10 + lag:70 + lag, j]).ravel()
        return np.corrcoef(a, b)[0, 1]
    assert lag_corr(K27) > 0.3 and lag_corr(K9) > 0.2 and lag_corr(K27) > 2 * lag_corr(K4ME3)
    # H3K4me1 is only weakly informative
    score = lambda j: auroc(y, X[:, :, j].sum(axis=1) * (1 if j in (K36, K4ME3, K4ME1) else -1))
    assert score(K4ME1) < 0.6 < score(K4ME3)


def test_bivalent_promoters_in_esc_like_tasks_need_combined_marks(e003, e123):
    def promoter(data):
        X = np.asarray(data.train.X, float)
        return np.log1p(X[:, 45:56, K4ME3].mean(1)), np.log1p(X[:, 45:56, K27].mean(1)), data.train.y
    for data, esc in ((e003, True), (e123, False)):
        k4, k27, y = promoter(data)
        off_marked = (y == 0) & (k4 > np.median(k4[y == 1]))
        both = np.mean(k27[off_marked] > np.percentile(k27, 75))
        if esc:
            assert both > 0.4, "silent genes with active-looking H3K4me3 carry H3K27me3 (bivalent)"
        else:
            assert both < 0.4
    # in the ESC task H3K4me3 alone ranks genes worse than H3K4me3 combined with H3K27me3
    k4, k27, y = promoter(e003)
    assert auroc(y, k4 - k27) > auroc(y, k4) + 0.02


def test_difficulty_follows_published_aurocs(home, e003, e123):
    e112 = load_task("E112")
    oracles = [d.truth.oracle_auroc for d in (e112, e003, e123)]  # published 0.69, 0.77, 0.92
    assert oracles == sorted(oracles)
    for data, published in ((e112, 0.69), (e003, 0.77), (e123, 0.92)):
        assert published < data.truth.oracle_auroc < published + 0.08
    # a simple model lands near the published figure, below the oracle
    from sklearn.linear_model import LogisticRegression

    def feats(X):
        return np.log1p(np.asarray(X, np.float32).reshape(len(X), 10, 10, 5).mean(2)).reshape(len(X), -1)
    for data, published in ((e112, 0.69), (e003, 0.77), (e123, 0.92)):
        lr = LogisticRegression(max_iter=3000, C=0.1).fit(feats(data.train.X), data.train.y)
        got = auroc(data.test.y, lr.predict_proba(feats(data.test.X))[:, 1])
        assert abs(got - published) < 0.035 and got < data.truth.oracle_auroc, f"{data.task}: {got:.3f}"


def test_ground_truth_importance_maps(e123):
    imp = np.asarray(e123.truth.importance, float)
    assert imp.shape == (6600, 5, 100)
    assert np.allclose(imp.sum(axis=(1, 2)), 1.0, atol=1e-2)
    by_mark = imp.mean(axis=0).sum(axis=1)
    assert by_mark[K4ME3] == by_mark.max() and by_mark[K4ME1] < 0.05
    k4 = imp[:, K4ME3].mean(axis=0)
    assert abs(int(np.argmax(k4)) - 50) <= 5
    assert imp[:, K36, 50:].sum() > 5 * imp[:, K36, :50].sum()  # gene body only
    assert abs(e123.truth.oracle_auroc - auroc(e123.test.y, e123.truth.latent)) < 1e-9


def test_housekeeping_genes_shared_across_tasks(home, e003, e123):
    """A gene's ON/OFF label agrees across cell types far above chance (0.5), more within a group."""
    e016 = load_task("E016")  # another embryonic stem cell line
    same_group = np.mean(e003.train.y == e016.train.y)
    other_group = np.mean(e003.train.y == e123.train.y)
    assert 0.65 < other_group < same_group < 0.9, (other_group, same_group)


def test_quick_subsample_is_stratified_and_deterministic(home):
    from chrombench.tasks import get_suite

    genes = get_suite("quick").genes
    a, b = load_task("E003", quick=True), load_task("E003", quick=True)
    assert [len(a.train), len(a.valid), len(a.test)] == [genes["train"], genes["valid"], genes["test"]]
    assert a.dataset.content_hash == b.dataset.content_hash
    assert a.dataset.content_hash != load_task("E003").dataset.content_hash
    assert abs(a.train.y.mean() - 0.5) < 0.02
    assert a.truth.importance.shape == (genes["test"], 5, 100)
