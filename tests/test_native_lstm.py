"""The fused LSTM kernels (AVX2 and AVX-512) compute what torch.nn.LSTM (the specification) computes, and fall back to it cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from chrombench.baselines import batched_lstm as bl
from chrombench.baselines import native_lstm

REQUIRED = os.environ.get("CHROMBENCH_REQUIRE_NATIVE") == "1"  # CI has a compiler and an AVX2 CPU


@pytest.fixture(scope="module")
def native():
    if not native_lstm.available():
        if REQUIRED:
            pytest.fail(f"the native kernels are required here but unavailable: {native_lstm.unavailable_reason()}")
        pytest.skip(f"native kernels unavailable: {native_lstm.unavailable_reason()}")


def _pooled(x, W, context, H, bidirectional, mode, use_native, monkeypatch, threads=1):
    """Outputs and gradients (x, W, context) of pooled_lstm_layer under a fixed weighted loss."""
    with monkeypatch.context() as m, native_lstm.threads(threads):
        if not use_native:
            m.setattr(bl, "use_native", lambda *a, **k: False)
        x = x.clone().requires_grad_(True)
        W = W.clone().requires_grad_(True)
        c = context.clone().requires_grad_(True) if context is not None else None
        rep, weights = bl.pooled_lstm_layer(x, W, H, bidirectional, mode, c)
        loss = (rep * torch.linspace(-1, 1, rep.numel()).view_as(rep)).sum()
        if weights.numel():  # the attention weights are an output too (interpretation differentiates them)
            loss = loss + (weights * torch.linspace(0, 1, weights.numel()).view_as(weights)).sum()
        loss.backward()
        return [rep.detach(), weights.detach(), x.grad, W.grad] + ([c.grad] if c is not None else [])


# (sequences, genes, steps, inputs, hidden, bidirectional): AttentiveChrome's two layers, genes that are
# not a multiple of the 8-gene vectors, a single gene, unidirectional and the search space's hidden sizes
SHAPES = [(5, 16, 100, 1, 32, True), (5, 128, 100, 1, 32, True), (5, 13, 100, 1, 32, True), (5, 37, 20, 1, 16, False),
          (1, 21, 5, 64, 16, True), (1, 3, 5, 64, 8, True), (2, 40, 30, 1, 64, True), (5, 1, 7, 1, 32, True)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("mode", ["attention", "uniform", "last"])
def test_native_kernels_match_the_torch_recurrence(native, shape, mode, monkeypatch):
    n, B, T, I, H, bidirectional = shape
    torch.manual_seed(hash(shape) % 1000)
    D = n * (2 if bidirectional else 1)
    x = torch.poisson(torch.full((n, B, T, I), 3.0)).log1p() if I == 1 else torch.randn(n, B, T, I)
    W = torch.randn(D, H + I + 1, 4 * H) * 0.3
    context = torch.randn(n, (2 if bidirectional else 1) * H) * 0.3 if mode == "attention" else None
    got = _pooled(x, W, context, H, bidirectional, mode, True, monkeypatch, threads=1 + SHAPES.index(shape) % 3)
    want = _pooled(x, W, context, H, bidirectional, mode, False, monkeypatch)
    names = ["summary", "weights", "d_input", "d_weights", "d_context"]
    if context is None:
        names.remove("d_context")
    for name, a, b in zip(names, got, want):
        if b.numel() == 0:
            assert a.numel() == 0, name
            continue
        # both are float32 sums in different orders; against float64 both sit ~1e-6 from the truth
        scale = b.abs().max().item()
        assert (a - b).abs().max().item() <= 2e-5 * max(scale, 1e-3), name


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_inference_with_attention_matches_the_torch_recurrence(native, shape, monkeypatch):
    """Prediction runs states, softmax and summary in one native call (one thread: sequence by sequence,
    several: blocks first); both give the torch path's weights and summaries, identically for any thread count."""
    n, B, T, I, H, bidirectional = shape
    torch.manual_seed(hash(shape) % 1000 + 1)
    D = n * (2 if bidirectional else 1)
    x = torch.poisson(torch.full((n, B, T, I), 3.0)).log1p() if I == 1 else torch.randn(n, B, T, I)
    W = torch.randn(D, H + I + 1, 4 * H) * 0.3
    context = torch.randn(n, (2 if bidirectional else 1) * H) * 0.3
    with torch.inference_mode():
        with monkeypatch.context() as m:
            m.setattr(bl, "use_native", lambda *a, **k: False)
            want = bl.pooled_lstm_layer(x, W, H, bidirectional, "attention", context)
        got = []
        for threads in (1, 2, 3):
            with native_lstm.threads(threads):
                got.append(bl.pooled_lstm_layer(x, W, H, bidirectional, "attention", context))
    for name, a, b in zip(("summary", "weights"), got[0], want):
        assert a.shape == b.shape, name
        assert (a - b).abs().max().item() <= 2e-5 * max(b.abs().max().item(), 1e-3), name
    assert torch.allclose(got[0][1].sum(-1), torch.ones(n, B))  # weights over the T steps sum to one
    for other in got[1:]:
        assert all(torch.equal(a, b) for a, b in zip(got[0], other))


def test_results_do_not_depend_on_the_thread_count(native):
    torch.manual_seed(3)
    x = torch.poisson(torch.full((5, 29, 100, 1), 2.0)).log1p()
    W = (torch.randn(10, 34, 128) * 0.3).requires_grad_(True)
    context = (torch.randn(5, 64) * 0.3).requires_grad_(True)
    outs = []
    for n in (1, 2, 3):
        W.grad = context.grad = None
        with native_lstm.threads(n):
            rep, weights = bl.pooled_lstm_layer(x, W, 32, True, "attention", context)
            rep.sum().backward()
        outs.append((rep.detach(), weights.detach(), W.grad.clone(), context.grad.clone()))
    for other in outs[1:]:
        for a, b in zip(outs[0], other):
            assert torch.equal(a, b)


def _attention_inputs():
    g = torch.Generator().manual_seed(5)
    return (torch.poisson(torch.full((5, 23, 60, 1), 2.0), generator=g).log1p(),
            torch.randn(10, 34, 128, generator=g) * 0.3, torch.randn(5, 64, generator=g) * 0.3)


def _attention_layer(threads: int, inputs=None):
    x, W, context = inputs if inputs is not None else _attention_inputs()
    W, context = W.clone().requires_grad_(True), context.clone().requires_grad_(True)
    with native_lstm.threads(threads):
        rep, weights = bl.pooled_lstm_layer(x, W, 32, True, "attention", context)
        rep.sum().backward()
    return rep.detach(), weights.detach(), W.grad, context.grad


def test_multithreaded_calls_from_several_python_threads_at_once(native):
    """The kernels keep worker threads between calls; callers that overlap (attribution runs batches in
    Python threads) must each get their own complete, correct result."""
    from concurrent.futures import ThreadPoolExecutor

    inputs = _attention_inputs()
    expected = _attention_layer(1, inputs)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: _attention_layer(2, inputs), range(8)))
    for got in results:
        assert all(torch.equal(a, b) for a, b in zip(expected, got))


FORKED = """
import json, os, signal, torch
import tests.test_native_lstm as t
torch.set_num_threads(1)
parent = t._attention_layer(2)  # starts the kernels' worker threads in this process
pid = os.fork()
if pid == 0:  # the child has none of them: its multithreaded call must start its own, not wait forever
    signal.alarm(20)
    child = t._attention_layer(2)
    os._exit(0 if all(torch.equal(a, b) for a, b in zip(parent, child)) else 3)
_, status = os.waitpid(pid, 0)
print(json.dumps({"child_exit": os.waitstatus_to_exitcode(status)}))
"""


@pytest.mark.slow  # a forked subprocess running the kernels
def test_a_forked_child_runs_multithreaded_kernels_too(native, tmp_path):
    result = _in_fresh_process(FORKED, tmp_path, PYTHONPATH=os.getcwd())
    assert result["child_exit"] == 0  # -14 (SIGALRM) would mean the child hung on its parent's workers


def _in_fresh_process(code: str, home, **env) -> dict:
    """Run ``code`` (which prints one JSON line last) in a new interpreter: the kernel state is per process."""
    full_env = dict(os.environ, CHROMBENCH_HOME=str(home), **env)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


PREDICT = """
import json, numpy as np, torch
from chrombench.baselines import native_lstm
from chrombench.baselines.attentivechrome import AttentiveChrome
torch.manual_seed(0)
model = AttentiveChrome(seed=0)
model.module_ = model._build_module().eval()
X = np.random.default_rng(0).poisson(3.0, size=(70, 100, 5)).astype(np.int32)
p = model.predict_proba(X)[:, 1]
print(json.dumps({"native": native_lstm.available(), "why": native_lstm.unavailable_reason(), "p": p.tolist()}))
"""


@pytest.mark.slow  # three fresh processes predicting with AttentiveChrome
def test_without_the_kernels_the_torch_recurrence_gives_the_same_predictions(native, tmp_path):
    fast = _in_fresh_process(PREDICT, tmp_path)
    off = _in_fresh_process(PREDICT, tmp_path, CHROMBENCH_NATIVE="0")
    broken = _in_fresh_process(PREDICT, tmp_path / "other-home", CC="/bin/false")
    assert fast["native"] and not off["native"] and not broken["native"]
    assert off["why"] == "CHROMBENCH_NATIVE=0"
    assert "failed" in broken["why"]  # the compiler's failure is the stated reason, not a crash
    for other in (off, broken):
        assert max(abs(a - b) for a, b in zip(fast["p"], other["p"])) < 1e-5


def test_the_kernel_is_compiled_once_per_home_and_then_reused(native, tmp_path):
    code = ("import json; from chrombench.baselines import native_library as n; import os;"
            "print(json.dumps({'ok': n.available(), 'files': sorted(os.listdir(n.build_dir()))}))")
    first = _in_fresh_process(code, tmp_path)
    built = tmp_path / "native" / first["files"][0]
    stamp = built.stat().st_mtime_ns
    second = _in_fresh_process(code, tmp_path)
    assert first["ok"] and second["ok"]
    assert first["files"] == second["files"] and len(first["files"]) == 1  # no half-written leftovers
    assert built.stat().st_mtime_ns == stamp


def test_the_fallback_is_nn_lstm_itself_chosen_in_one_place_and_said_once(caplog):
    """float64 (as gradcheck uses) goes to torch.nn.LSTM: the same numbers as nn.LSTM called directly
    with the block's weights, and the reason is logged once however many calls."""
    import logging

    from torch import nn

    torch.manual_seed(0)
    block = bl.BlockLSTM(3, 1, 8, bidirectional=True).double()
    x = torch.randn(3, 4, 6, 1, dtype=torch.float64)
    bl._said.clear()
    with caplog.at_level(logging.INFO, logger="chrombench.lstm"):
        rep, _ = block.summarise(x, "last")
        block.summarise(x, "uniform")
    assert sum("nn.LSTM" in r.getMessage() and "float64" in r.getMessage() for r in caplog.records) == 1
    for k in range(3):
        ref = nn.LSTM(1, 8, batch_first=True, bidirectional=True).double()
        with torch.no_grad():
            for suffix, reverse in (("", False), ("_reverse", True)):
                for name, tensor in block.torch_lstm(k, reverse).items():
                    getattr(ref, f"{name}_l0{suffix}").copy_(tensor)
        states = ref(x[k])[0]
        torch.testing.assert_close(block(x)[k], states)
        # "last": each direction's final state (the reverse direction's is at position 0)
        torch.testing.assert_close(rep[k], torch.cat([states[:, -1, :8], states[:, 0, 8:]], dim=1))
    assert not bl.use_native(x, block.weight, 8)


@pytest.mark.parametrize("mode", ["attention", pytest.param("uniform", marks=pytest.mark.slow),
                                  pytest.param("last", marks=pytest.mark.slow)])
def test_the_specification_passes_a_float64_gradcheck(mode):
    """The path the native operator is held to (nn.LSTM and the torch summaries) has the gradients
    finite differences give, in float64, for every summary."""
    torch.manual_seed(1)
    x = torch.randn(2, 3, 4, 2, dtype=torch.float64, requires_grad=True)
    W = (torch.randn(4, 5 + 2 + 1, 20, dtype=torch.float64) * 0.4).requires_grad_(True)
    c = (torch.randn(2, 10, dtype=torch.float64) * 0.4).requires_grad_(True) if mode == "attention" else None

    def layer(x, W, *context):
        rep, weights = bl.pooled_lstm_layer(x, W, 5, True, mode, *context)
        return (rep, weights) if mode == "attention" else rep

    assert torch.autograd.gradcheck(layer, (x, W) + ((c,) if c is not None else ()))


OPERATOR_CASES = [((5, 13, 20, 1, 32, True), "attention"), ((1, 7, 5, 64, 16, True), "uniform"),
                  ((2, 9, 6, 1, 8, False), "last"), ((1, 5, 5, 64, 16, False), "attention")]


@pytest.mark.parametrize("case", OPERATOR_CASES, ids=lambda c: f"{c[1]}-{'x'.join(map(str, c[0]))}")
def test_the_operators_pass_torch_library_opcheck(native, case):
    """chrombench::lstm_pool and its backward operator: schema, autograd registration, fake (meta)
    kernels and tracing under AOTAutograd all agree with eager execution (torch.library.opcheck)."""
    (n, B, T, I, H, bidirectional), mode = case
    torch.manual_seed(2)
    dirs = 2 if bidirectional else 1
    x = torch.randn(n, B, T, I).requires_grad_(I > 1)
    W = (torch.randn(n * dirs, H + I + 1, 4 * H) * 0.3).requires_grad_(True)
    c = (torch.randn(n, dirs * H) * 0.3).requires_grad_(True) if mode == "attention" else None
    for save in (True, False):  # save=False: inference, nothing requires a gradient
        args = (x, W, c, H, bidirectional, mode, True) if save else \
            (x.detach(), W.detach(), c if c is None else c.detach(), H, bidirectional, mode, False)
        assert set(torch.library.opcheck(bl.lstm_pool, args).values()) == {"SUCCESS"}
    c = c if c is None else c.detach()
    rep, weights, *residuals = bl.lstm_pool(x.detach(), W.detach(), c, H, bidirectional, mode, True)
    g_weights = torch.randn_like(weights) if mode == "attention" else None
    backward_args = (torch.randn_like(rep), g_weights, W.detach(), c, rep, weights, *residuals, H, bidirectional, mode, I > 1)
    assert set(torch.library.opcheck(bl.lstm_pool_backward, backward_args).values()) == {"SUCCESS"}


@pytest.mark.parametrize("mode", ["attention", "uniform", "last"])
def test_training_steps_hand_their_buffers_back(native, mode):
    """Each training step's saved gates and states (tens of MB at batch 128) go back to the workspace once
    its graph is freed, in every summary mode: a step that kept them grew a fit by ~100 MB per batch."""
    import gc

    x = torch.randn(5, 24, 30, 1)
    W = (torch.randn(10, 34, 128) * 0.3).requires_grad_(True)
    c = (torch.randn(5, 64) * 0.3).requires_grad_(True) if mode == "attention" else None
    rep, weights, *residuals = bl.lstm_pool(x, W, c, 32, True, mode, True)
    assert not any(t.requires_grad for t in residuals)  # what the node keeps must not point back at it
    del rep, weights, residuals
    for _ in range(4):
        rep, weights = bl.pooled_lstm_layer(x, W, 32, True, mode, c)
        rep.sum().backward()
    del rep, weights
    gc.collect()
    assert not [o for o in gc.get_objects() if type(o) is bl._Lease]  # type(): isinstance() wakes lazy proxies


def test_the_operator_refuses_what_its_kernels_cannot_read(native):
    x, W = torch.randn(1, 4, 5, 1, dtype=torch.float64), torch.randn(2, 10, 32, dtype=torch.float64)
    with pytest.raises(ValueError, match="float32"):
        bl.lstm_pool(x, W, None, 8, True, "last", False)
    with pytest.raises(ValueError, match="hidden % 8"):
        bl.lstm_pool(x.float(), torch.randn(2, 8, 24), None, 6, True, "last", False)


def test_the_ctypes_signatures_are_the_c_definitions():
    """One table gives every entry point's arguments; a C definition that changes without it is an error
    naming the function (a call through a stale signature would corrupt memory silently)."""
    from chrombench.baselines import native_library as nl

    sources = {path.name: path.read_text() for path in nl.SOURCES}
    nl.check_signatures(sources)  # the shipped sources agree with the table
    assert set(nl.c_signatures("".join(sources.values()))) == set(nl.SIGNATURES)
    changed = dict(sources, **{"abi.c": sources["abi.c"].replace("cb_abi_version(void)", "cb_abi_version(int extra)")})
    with pytest.raises(nl.NativeABIError, match="cb_abi_version: C takes .*int extra"):
        nl.check_signatures(changed)
    with pytest.raises(nl.NativeABIError, match="cb_new: defined in C but not in SIGNATURES"):
        nl.check_signatures(dict(sources, **{"new.c": "int cb_new(int n) {\n    return n;\n}\n"}))


ABI_MISMATCH = """
import json
from chrombench.baselines import native_library as n
n.ABI_VERSION += 1  # a library built for another version: as if a stale one were found
try:
    n.available()
    print(json.dumps({"raised": None}))
except n.NativeABIError as exc:
    print(json.dumps({"raised": str(exc)}))
"""


def test_a_library_of_another_abi_version_is_an_error_not_a_fallback(native, tmp_path):
    result = _in_fresh_process(ABI_MISMATCH, tmp_path)
    assert result["raised"] and "ABI version" in result["raised"]


def _cpu_flags() -> set:
    try:
        return set(open("/proc/cpuinfo").read().split())
    except OSError:
        return set()


@pytest.fixture(params=["avx2", "avx512"])
def isa(native, request):
    """Each instruction set's kernels in turn (AVX-512 only where the CPU has it), then the default again."""
    if request.param == "avx512" and "avx512f" not in _cpu_flags():
        pytest.skip("the CPU has no AVX-512F")
    before = native_lstm.use_isa(request.param)
    yield request.param
    native_lstm.use_isa(before)


@pytest.mark.parametrize("shape", SHAPES[:5], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("mode", ["attention", "uniform", "last"])
def test_the_inference_pass_gives_the_training_pass_outputs(isa, shape, mode):
    """Validation and prediction run a pass that keeps nothing for a backward pass (and squashes with
    fewer reciprocals): its summaries and weights are the training forward's to float rounding."""
    n, B, T, I, H, bidirectional = shape
    torch.manual_seed(7)
    D = n * (2 if bidirectional else 1)
    x = torch.poisson(torch.full((n, B, T, I), 3.0)).log1p() if I == 1 else torch.randn(n, B, T, I)
    W = torch.randn(D, H + I + 1, 4 * H) * 0.3
    context = torch.randn(n, (2 if bidirectional else 1) * H) * 0.3 if mode == "attention" else None
    trained = bl.pooled_lstm_layer(x, W.clone().requires_grad_(True), H, bidirectional, mode, context)
    assert trained[0].requires_grad  # the training pass ran: it kept the gates for a backward pass
    with torch.inference_mode():
        inferred = bl.pooled_lstm_layer(x, W, H, bidirectional, mode, context)
    for name, a, b in zip(("summary", "weights"), inferred, trained):
        assert a.shape == b.shape, name
        if b.numel():
            assert (a - b.detach()).abs().max().item() <= 1e-5, name


def test_the_avx2_kernels_run_where_avx512_is_masked_off(isa, monkeypatch):
    """The kernels of each instruction set compute the torch recurrence and its gradients (forced with
    use_isa, as CHROMBENCH_NATIVE_ISA=avx2 does on a CPU that has AVX-512)."""
    assert native_lstm.isa() == isa
    torch.manual_seed(11)
    x = torch.poisson(torch.full((5, 37, 40, 1), 3.0)).log1p()
    W = torch.randn(10, 34, 128) * 0.3
    context = torch.randn(5, 64) * 0.3
    got = _pooled(x, W, context, 32, True, "attention", True, monkeypatch, threads=2)
    want = _pooled(x, W, context, 32, True, "attention", False, monkeypatch)
    for name, a, b in zip(["summary", "weights", "d_input", "d_weights", "d_context"], got, want):
        assert (a - b).abs().max().item() <= 2e-5 * max(b.abs().max().item(), 1e-3), name


ISA_CHOICE = """
import json, torch
from chrombench.baselines import batched_lstm as bl, native_lstm
torch.manual_seed(0)
x, W = torch.randn(2, 19, 12, 1), torch.randn(4, 18, 64) * 0.3
try:
    with torch.inference_mode():
        rep, _ = bl.pooled_lstm_layer(x, W, 16, True, "uniform")
    print(json.dumps({"isa": native_lstm.isa(), "rep": rep.flatten().tolist()}))
except ValueError as exc:
    print(json.dumps({"error": str(exc)}))
"""


@pytest.mark.slow  # fresh processes
def test_the_environment_picks_the_instruction_set_and_a_bad_choice_is_named(native, tmp_path):
    widest = _in_fresh_process(ISA_CHOICE, tmp_path)
    assert widest["isa"] == ("avx512" if "avx512f" in _cpu_flags() else "avx2")  # the widest the CPU has
    forced = _in_fresh_process(ISA_CHOICE, tmp_path, CHROMBENCH_NATIVE_ISA="avx2")
    assert forced["isa"] == "avx2"
    assert max(abs(a - b) for a, b in zip(widest["rep"], forced["rep"])) < 1e-5
    wrong = _in_fresh_process(ISA_CHOICE, tmp_path, CHROMBENCH_NATIVE_ISA="sse9")
    assert "CHROMBENCH_NATIVE_ISA='sse9'" in wrong["error"] and "avx2" in wrong["error"]
