"""AttentiveChrome: the reference function exactly, reference weights in and out, ablations, the trainer."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from torch import nn

from chrombench import N_BINS, N_MARKS
from chrombench.baselines import attentivechrome as ac
from chrombench.baselines.batched_lstm import lstm_layer, pooled_lstm_layer
from chrombench.baselines.torch_trainer import resolve_device
from chrombench.errors import ChrombenchError, ModelFormatError
from chrombench.models.io import load_model, read_config
from chrombench.models.weights import import_reference_weights

from toydata import read_toy  # noqa: E402

ABLATIONS = [ac.AttentiveChrome, ac.AttentiveChromeNoAlpha, ac.AttentiveChromeNoBeta,
             ac.AttentiveChromeUnidirectional, ac.PlainLSTM]
FAST = {"epochs": 2, "batch_size": 8, "device": "cpu"}


@pytest.fixture(autouse=True, scope="module")
def one_thread(single_thread_torch):
    """Single-threaded torch: on a busy 2-core machine OpenMP threads mostly wait for each other."""


def heavy_tailed_counts(n: int, seed: int) -> np.ndarray:
    """Raw counts at the archive's scale: mostly small integers, H3K4me3 up to several hundred."""
    rng = np.random.default_rng(seed)
    X = rng.negative_binomial(1, 0.3, size=(n, N_BINS, N_MARKS))
    X[:, :, 3] += rng.negative_binomial(1, 0.04, size=(n, N_BINS))
    return X.astype(np.int32)


# -- the reference architecture, written out plainly from its description ------------------------
# Five separate nn.LSTMs and a loop over genes, with the reference code's parameter names.

class _RefAttention(nn.Module):
    def __init__(self, size: int):
        super().__init__()
        self.bin_context_vector = nn.Parameter(torch.empty(size, 1).uniform_(-1.0, 1.0))


class _RefEncoder(nn.Module):
    def __init__(self, input_size: int, hidden: int):
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden, bidirectional=True)
        self.bin_attention = _RefAttention(2 * hidden)

    def forward(self, seq):  # seq [T, input_size] for one gene
        out = self.rnn(seq[:, None, :])[0][:, 0]  # [T, 2 hidden]
        weights = torch.softmax((out @ self.bin_attention.bin_context_vector)[:, 0], dim=0)
        return (weights[:, None] * out).sum(0), weights


class ReferenceAttentiveChrome(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn_hms = nn.ModuleList([_RefEncoder(1, 32) for _ in range(N_MARKS)])
        self.hm_level_rnn_1 = _RefEncoder(64, 16)
        self.fdiff1_1 = nn.Linear(32, 1)

    @torch.no_grad()
    def forward(self, X):  # raw counts [n, 100, 5] -> probability [n], alpha [n, 5, 100], beta [n, 5]
        probs, alphas, betas = [], [], []
        for x in torch.as_tensor(np.asarray(X), dtype=torch.float32):
            marks = [enc(x[:, j:j + 1]) for j, enc in enumerate(self.rnn_hms)]
            v, beta = self.hm_level_rnn_1(torch.stack([m for m, _ in marks]))
            probs.append(torch.sigmoid(self.fdiff1_1(v))[0])
            alphas.append(torch.stack([a for _, a in marks]))
            betas.append(beta)
        return torch.stack(probs).numpy(), torch.stack(alphas).numpy(), torch.stack(betas).numpy()


@pytest.fixture(scope="module")
def reference():
    torch.manual_seed(7)
    return ReferenceAttentiveChrome()


@pytest.fixture
def reference_file(reference, tmp_path):
    path = tmp_path / "E003_attchrome_avgAUC_model.pt"
    torch.save(reference.state_dict(), path)
    return path


def test_imported_weights_compute_the_reference_function(reference, reference_file):
    X = np.concatenate([read_toy("test").X, heavy_tailed_counts(12, seed=1)])
    p_ref, alpha_ref, beta_ref = reference(X)
    model = import_reference_weights(reference_file, device="cpu")
    assert model.input_transform == "raw"
    np.testing.assert_allclose(model.predict_proba(X)[:, 1], p_ref, atol=1e-5, rtol=0)
    alpha, beta = model.attention(X)
    np.testing.assert_allclose(alpha, alpha_ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(beta, beta_ref, atol=1e-5, rtol=0)


def test_saved_import_records_raw_inputs_and_predicts_the_same(reference, reference_file, tmp_path):
    X = read_toy("valid").X
    import_reference_weights(reference_file, out=tmp_path / "model", device="cpu")
    config = read_config(tmp_path / "model")
    assert config["params"]["input_transform"] == "raw"
    assert config["training"]["imported"]["file"] == reference_file.name
    loaded = load_model(tmp_path / "model")
    np.testing.assert_allclose(loaded.predict_proba(X)[:, 1], reference(X)[0], atol=1e-5, rtol=0)


def test_export_to_reference_names_round_trips(reference, reference_file, tmp_path):
    model = import_reference_weights(reference_file, device="cpu")
    exported = model.to_reference_state_dict()
    again = ReferenceAttentiveChrome()
    again.load_state_dict(exported, strict=True)  # same keys and shapes as the reference code
    X = heavy_tailed_counts(6, seed=2)
    np.testing.assert_allclose(again(X)[0], reference(X)[0], atol=1e-6, rtol=0)
    torch.save(exported, tmp_path / "exported.pt")
    reimported = import_reference_weights(tmp_path / "exported.pt", device="cpu")
    np.testing.assert_array_equal(reimported.predict_proba(X), model.predict_proba(X))


def test_every_ablation_exports_and_reimports_its_reference_shaped_weights(tmp_path):
    X = read_toy("test").X
    for cls in ABLATIONS:
        model = cls(**FAST).fit(read_toy("train"), read_toy("valid"))
        path = tmp_path / f"{cls.name}.pt"
        torch.save(model.to_reference_state_dict(), path)
        back = import_reference_weights(path, arch=cls.name, input_transform="log1p", device="cpu")
        np.testing.assert_allclose(back.predict_proba(X), model.predict_proba(X), atol=1e-6, rtol=0)


def test_bad_state_dict_names_every_mismatch_and_writes_nothing(reference, tmp_path):
    state = dict(reference.state_dict())
    del state["rnn_hms.2.rnn.weight_hh_l0"]
    state["rnn_hms.9.rnn.weight_ih_l0"] = torch.zeros(128, 1)
    state["fdiff1_1.weight"] = torch.zeros(1, 64)
    state["hm_level_rnn_1.bin_attention.bin_context_vector"] = torch.zeros(16, 1)
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    out = tmp_path / "out"
    with pytest.raises(ModelFormatError) as err:
        import_reference_weights(path, out=out)
    msg = str(err.value)
    assert "4 problems" in msg
    for fragment in ("missing key 'rnn_hms.2.rnn.weight_hh_l0'", "unexpected key 'rnn_hms.9.rnn.weight_ih_l0'",
                     "'fdiff1_1.weight' has shape [1, 64], expected [1, 32]",
                     "'hm_level_rnn_1.bin_attention.bin_context_vector' has shape [16, 1], expected [32, 1]"):
        assert fragment in msg
    assert not out.exists()


class _NotATensorFile:
    """Pickling an instance of this class needs this module to load: weights_only refuses it."""


@pytest.mark.parametrize("content, expected", [
    (lambda sd: [t for t in sd.values()], "holds a list, not a state dict"),
    (lambda sd: {"state_dict": sd, "epoch": 3}, "nested mapping"),
    (lambda sd: {**sd, "fdiff1_1.bias": torch.tensor([float("nan")])}, "not a finite floating-point tensor"),
    (lambda sd: _NotATensorFile(), "unpickling code"),
])
def test_files_that_are_not_plain_state_dicts_are_refused(reference, tmp_path, content, expected):
    path = tmp_path / "weights.pt"
    torch.save(content(reference.state_dict()), path)
    with pytest.raises(ModelFormatError, match=expected):
        import_reference_weights(path, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


class _RunsACommand:
    """Unpickling this would call os.system: the classic malicious .pt file."""

    def __reduce__(self):
        import os

        return os.system, ("echo pwned",)


def test_a_file_that_would_run_code_is_refused_without_unsafe_advice(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"fdiff1_1.bias": _RunsACommand()}, path)
    with pytest.raises(ModelFormatError) as err:
        import_reference_weights(path, out=tmp_path / "out")
    msg = str(err.value)
    assert "unpickling code" in msg and "system" in msg
    assert "weights_only=False" not in msg  # torch's suggestion is exactly what not to do with such a file
    assert not (tmp_path / "out").exists()


def test_a_file_that_is_not_a_torch_file_is_refused(tmp_path):
    path = tmp_path / "weights.pt"
    path.write_text("GeneID,BinID\n")
    with pytest.raises(ModelFormatError, match="not a torch .pt file"):
        import_reference_weights(path)


# -- the ablations remove what they claim ---------------------------------------------------------

def _fitted(cls, **params):
    return cls(**{**FAST, **params}).fit(read_toy("train"), read_toy("valid"))


def test_shapes_and_attention_weights_sum_to_one():
    X = read_toy("test").X
    model = _fitted(ac.AttentiveChrome)
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert ((proba >= 0) & (proba <= 1)).all()
    alpha, beta = model.attention(X)
    assert alpha.shape == (len(X), N_MARKS, N_BINS) and beta.shape == (len(X), N_MARKS)
    np.testing.assert_allclose(alpha.sum(axis=2), 1.0, atol=1e-5)
    np.testing.assert_allclose(beta.sum(axis=1), 1.0, atol=1e-5)
    assert alpha.std(axis=2).max() > 0 and beta.std(axis=1).max() > 0  # real attention is not uniform


def _with_context_zeroed(full_state: dict, keys: list[str]) -> dict:
    return {k: (torch.zeros_like(v) if k in keys else v) for k, v in full_state.items()}


def test_no_alpha_is_attentivechrome_with_uniform_bin_weights():
    X = heavy_tailed_counts(8, seed=3)
    full = _fitted(ac.AttentiveChrome, input_transform="raw")
    state = full.to_reference_state_dict()
    bin_keys = [k for k in state if k.startswith("rnn_hms") and "bin_context" in k]
    no_alpha = ac.AttentiveChromeNoAlpha(input_transform="raw", device="cpu")
    assert set(no_alpha.reference_shapes()) == set(state) - set(bin_keys)  # no bin context vectors at all
    no_alpha.load_reference_state_dict({k: v for k, v in state.items() if k not in bin_keys})
    alpha, beta = no_alpha.attention(X)
    assert (alpha == np.float32(1 / N_BINS)).all()
    # whatever the bin context vectors were, no-alpha computes the full model with them at zero
    zeroed = ac.AttentiveChrome(input_transform="raw", device="cpu").load_reference_state_dict(
        _with_context_zeroed(state, bin_keys))
    np.testing.assert_allclose(no_alpha.predict_proba(X), zeroed.predict_proba(X), atol=1e-6)
    assert np.abs(full.predict_proba(X) - zeroed.predict_proba(X)).max() > 1e-6  # the vectors did matter


def test_no_beta_is_attentivechrome_with_uniform_mark_weights():
    X = heavy_tailed_counts(8, seed=4)
    full = _fitted(ac.AttentiveChrome, input_transform="raw")
    state = full.to_reference_state_dict()
    mark_key = ["hm_level_rnn_1.bin_attention.bin_context_vector"]
    no_beta = ac.AttentiveChromeNoBeta(input_transform="raw", device="cpu")
    assert set(no_beta.reference_shapes()) == set(state) - set(mark_key)
    no_beta.load_reference_state_dict({k: v for k, v in state.items() if k not in mark_key})
    alpha, beta = no_beta.attention(X)
    assert (beta == np.float32(1 / N_MARKS)).all()
    np.testing.assert_allclose(alpha.sum(axis=2), 1.0, atol=1e-5)
    zeroed = ac.AttentiveChrome(input_transform="raw", device="cpu").load_reference_state_dict(
        _with_context_zeroed(state, mark_key))
    np.testing.assert_allclose(no_beta.predict_proba(X), zeroed.predict_proba(X), atol=1e-6)


def test_unidirectional_has_no_reverse_lstms_and_never_looks_ahead():
    model = _fitted(ac.AttentiveChromeUnidirectional)
    assert not [k for k in model.reference_shapes() if "reverse" in k]
    assert model.n_parameters() < ac.AttentiveChrome().n_parameters() / 2 + 1000
    x = torch.log1p(torch.as_tensor(heavy_tailed_counts(3, seed=5), dtype=torch.float32))
    later = x.clone()
    later[:, 60:] += 1.0  # change only bins 60..99
    for cls, looks_ahead in ((ac.AttentiveChromeUnidirectional, False), (ac.AttentiveChrome, True)):
        rnn = cls()._build_module().bin_rnn
        with torch.no_grad():
            h, h_later = (rnn(v.permute(2, 0, 1).unsqueeze(-1)) for v in (x, later))  # [5, n, 100, R]
        assert torch.equal(h[:, :, :60], h_later[:, :, :60]) is not looks_ahead


def test_plain_lstm_has_no_attention():
    model = _fitted(ac.PlainLSTM)
    assert not [k for k in model.reference_shapes() if "context" in k]
    assert model.n_parameters() == ac.AttentiveChrome().n_parameters() - N_MARKS * 64 - 32
    assert not model.has_attention
    with pytest.raises(ChrombenchError, match="no attention"):
        model.attention(read_toy("test").X)
    assert model.predict_proba(read_toy("test").X).shape == (10, 2)


@pytest.mark.parametrize("cls", ABLATIONS, ids=[c.name for c in ABLATIONS])
def test_every_variant_fits_and_predicts_on_the_toy_sample(cls):
    log = []
    model = cls(**FAST).fit(read_toy("train"), read_toy("valid"), on_epoch=lambda e, m: log.append((e, m)))
    assert [e for e, _ in log] == [0, 1]
    assert {"valid_auroc", "train_loss", "epoch_time"} <= set(log[0][1])
    proba = model.predict_proba(read_toy("test").X)
    assert proba.shape == (10, 2) and np.isfinite(proba).all()


# -- the trainer -------------------------------------------------------------------------------------

def test_same_seed_same_predictions_other_seed_other_predictions():
    X = read_toy("test").X
    a, b = _fitted(ac.AttentiveChrome, seed=3), _fitted(ac.AttentiveChrome, seed=3)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert not np.array_equal(a.predict_proba(X), _fitted(ac.AttentiveChrome, seed=4).predict_proba(X))


def test_fitting_leaves_the_callers_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    _fitted(ac.AttentiveChrome, epochs=1)
    assert torch.equal(torch.rand(3), expected)


def test_save_and_load_give_identical_predictions_and_attention(tmp_path):
    X = read_toy("test").X
    model = _fitted(ac.AttentiveChrome)
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert type(loaded) is ac.AttentiveChrome and loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    for a, b in zip(loaded.attention(X), model.attention(X)):
        np.testing.assert_array_equal(a, b)


def test_on_epoch_exceptions_stop_training():
    class Pruned(Exception):
        pass

    seen = []

    def prune_at_second(epoch, metrics):
        seen.append(epoch)
        if epoch == 1:
            raise Pruned

    with pytest.raises(Pruned):
        ac.AttentiveChrome(**{**FAST, "epochs": 10}).fit(read_toy("train"), read_toy("valid"), on_epoch=prune_at_second)
    assert seen == [0, 1]


def test_early_stopping_waits_patience_epochs_without_improvement():
    # a vanishing learning rate cannot move the validation AUROC: the first epoch stays the best
    model = ac.AttentiveChrome(**{**FAST, "lr": 1e-12, "epochs": 20, "patience": 2})
    model.stall_rescues = 0  # patience alone (the stall rescue is tested in test_verdict.py)
    model.fit(read_toy("train"), read_toy("valid"))
    assert model.history_["stopped"] == "patience"
    assert len(model.history_["epochs"]) == 3 and model.history_["best_epoch"] == 0


def test_a_fit_that_never_moves_is_stalled_after_its_rescues():
    model = _fitted(ac.AttentiveChrome, lr=1e-12, epochs=20, patience=2)
    report = model.training_report()
    # two cuts, each followed by patience's 2 epochs, after the first 3: it never learned
    assert report["stopped_by"] == "stalled" and report["converged"] is False
    assert len(report["lr_cuts"]) == 2 and report["epochs_run"] == 3 + 2 * 2


def test_dropout_acts_in_training_mode_only():
    x = torch.log1p(torch.as_tensor(heavy_tailed_counts(16, seed=6), dtype=torch.float32))
    module = ac.AttentiveChrome(dropout=0.5)._build_module()
    module.train()
    with torch.no_grad():
        assert not torch.equal(module(x)[0], module(x)[0])
        module.eval()
        assert torch.equal(module(x)[0], module(x)[0])


def test_batched_recurrence_gradients_are_exact():
    torch.manual_seed(0)
    for bidirectional in (True, False):
        x = torch.randn(2, 4, 9, 3, dtype=torch.float64, requires_grad=True)  # 2 sequences, 4 genes, 9 steps
        W = torch.randn((2 if bidirectional else 1) * 2, 5 + 3 + 1, 20, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda x, W: lstm_layer(x, W, 5, bidirectional), (x, W), fast_mode=True)


@pytest.mark.parametrize("mode", ["attention", "uniform", "last"])
def test_pooled_recurrence_gradients_are_exact(mode):
    torch.manual_seed(1)
    for bidirectional in (True, False):
        dirs = 2 if bidirectional else 1
        x = torch.randn(2, 3, 7, 2, dtype=torch.float64, requires_grad=True)
        W = torch.randn(dirs * 2, 4 + 2 + 1, 16, dtype=torch.float64, requires_grad=True)
        context = torch.randn(2, dirs * 4, dtype=torch.float64, requires_grad=True) if mode == "attention" else None

        def summary(x, W, *context):
            rep, weights = pooled_lstm_layer(x, W, 4, bidirectional, mode, *context)
            # the weights are an output too (interpretation may differentiate them)
            return (rep, weights) if mode == "attention" else rep

        inputs = (x, W) + ((context,) if context is not None else ())
        assert torch.autograd.gradcheck(summary, inputs, fast_mode=True)


def test_auto_device_uses_cuda_when_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"


def test_search_space_builds_valid_models():
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for cls in (ac.AttentiveChrome, ac.PlainLSTM):
        for _ in range(3):
            params = cls.search_space(study.ask())
            model = cls(**params)
            assert 1e-4 <= model.lr <= 1e-2 and 0 <= model.dropout <= 0.5
            assert model.n_parameters() > 0
