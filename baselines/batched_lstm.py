"""Many small independent LSTMs and a summary of their states: one specification, ``torch.nn.LSTM``,
and one operator, ``chrombench::lstm_pool``, that computes it fast on a CPU.

AttentiveChrome runs ten tiny LSTMs over the 100 bins of each gene (five marks, two directions) and
summarises each one's states (attention, or the uniform / last-state summaries of its ablations).
The specification is ``nn.LSTM`` (its gate order, biases and bidirectional layout); where the fused
kernels do not apply (no compiler or AVX2, float64, a GPU, a hidden size not a multiple of 8) that is
what runs: ``nn.LSTM`` itself with each block's weights, and plain torch for the summaries,
differentiated by autograd (cuDNN's LSTM on a GPU). ``use_native`` makes the choice, in one place,
and logs each reason once.

The fast CPU path is the custom operator ``torch.ops.chrombench.lstm_pool`` (``torch.library``: a fake
kernel for tracing, its gradient registered as the operator ``chrombench::lstm_pool_backward``). It
runs all ``D`` LSTMs ("blocks") with their summaries in one native call (``native_lstm.py``,
``native/lstm_kernel.c``) and its backward pass through both in another. Each block's gradient only
ever touches that block's weights.

Layout. Callers see sequences as ``[n, B, T, features]``. A block's weights are one matrix
``W [H + I + 1, 4H]`` acting on ``[h_{t-1}; x_t; 1]``: rows ``0:H`` are ``weight_hh.T``, rows
``H:H+I`` are ``weight_ih.T``, the last row is the summed bias. Gate columns are ordered (o, i, f, g)
(torch orders them i, f, g, o; ``pack_lstm_weights`` / ``unpack_lstm_weights`` convert). Blocks
``0..n-1`` run the sequences forwards, blocks ``n..2n-1`` (bidirectional) backwards. The kernels
match ``nn.LSTM`` to float32 rounding (~1e-7 relative).
"""

from __future__ import annotations

import logging
import math
import threading
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from . import native_lstm

log = logging.getLogger("chrombench.lstm")

POOLINGS = ("attention", "uniform", "last")

# Gate order: torch's (i, f, g, o) -> ours (o, i, f, g), as chunk indices of the 4H axis.
_TORCH_TO_OURS = (3, 0, 1, 2)
_OURS_TO_TORCH = (1, 2, 3, 0)


def _reorder_gates(t: Tensor, order, dim: int) -> Tensor:
    chunks = t.chunk(4, dim=dim)
    return torch.cat([chunks[k] for k in order], dim=dim)


def pack_lstm_weights(weight_ih, weight_hh, bias_ih, bias_hh) -> Tensor:
    """torch/reference LSTM tensors (``[4H, I]``, ``[4H, H]``, ``[4H]``, ``[4H]``) -> ``W [H+I+1, 4H]``."""
    bias = (bias_ih + bias_hh).unsqueeze(0)
    stacked = torch.cat([weight_hh.t(), weight_ih.t(), bias], dim=0)
    return _reorder_gates(stacked, _TORCH_TO_OURS, dim=1).contiguous()


def unpack_lstm_weights(W: Tensor, hidden: int) -> dict[str, Tensor]:
    """Inverse of ``pack_lstm_weights``. The summed bias goes to ``bias_ih`` and ``bias_hh`` is zero:
    only their sum is identifiable, as both enter the gates added together."""
    W = _reorder_gates(W, _OURS_TO_TORCH, dim=1)
    weight_hh, weight_ih, bias = W[:hidden], W[hidden:-1], W[-1]
    return {"weight_ih": weight_ih.t().contiguous(), "weight_hh": weight_hh.t().contiguous(),
            "bias_ih": bias.contiguous(), "bias_hh": torch.zeros_like(bias)}


# -- the specification: torch.nn.LSTM --------------------------------------------------------------

_said: set = set()


def use_native(x: Tensor, W: Tensor, hidden: int, context: Tensor | None = None) -> bool:
    """The one place the path is chosen: the fused kernels for float32 CPU operands when they are built
    and ``hidden % 8 == 0``, else ``nn.LSTM`` itself (cuDNN on a GPU). Each reason is logged once."""
    cpu32 = all(t.device.type == "cpu" and t.dtype == torch.float32 for t in (x, W, context) if t is not None)
    if cpu32 and hidden % 8 == 0 and W.is_contiguous() and native_lstm.available():
        return True
    if not cpu32:
        why = f"{x.dtype} on {x.device.type}"
    else:
        why = native_lstm.unavailable_reason() or (f"hidden size {hidden} is not a multiple of 8" if hidden % 8
                                                   else "non-contiguous weights")
    if why not in _said:
        _said.add(why)
        log.info("LSTM layers run as torch.nn.LSTM (%s)", why)
    return False


_paths = threading.local()  # the set ``recording_paths`` fills in this thread, when one is open


@contextmanager
def recording_paths():
    """The paths (``"native"``, ``"torch"``) that this thread's LSTM layers ran inside the block, as a set
    filled while it is open: what a fit records in its ``compute`` block."""
    before = getattr(_paths, "seen", None)
    _paths.seen = seen = set()
    try:
        yield seen
    finally:
        _paths.seen = before


def _note_path(native: bool) -> None:
    seen = getattr(_paths, "seen", None)
    if seen is not None:
        seen.add("native" if native else "torch")


_LSTM_TEMPLATES: dict = {}


def lstm_layer(x: Tensor, W: Tensor, hidden: int, bidirectional: bool = False) -> Tensor:
    """All hidden states of independent single-layer LSTMs from zero state, one per block of ``W``:
    ``x [n, B, T, I]`` -> ``[n, B, T, directions * H]``. The specification, run as is:
    ``nn.LSTM(batch_first=True)`` per sequence with block k's weights (and block n + k's as the reverse
    direction, whose states follow the forward ones in sequence order), differentiable through ``W``
    by autograd. The zoo only needs summaries, which ``pooled_lstm_layer`` computes."""
    n, I = x.shape[0], x.shape[3]
    key = (I, hidden, bidirectional, x.device, x.dtype)
    if key not in _LSTM_TEMPLATES:  # a module to call with each block's weights (torch.func.functional_call)
        _LSTM_TEMPLATES[key] = nn.LSTM(I, hidden, batch_first=True, bidirectional=bidirectional).to(x.device, x.dtype)
    lstm = _LSTM_TEMPLATES[key]
    outs = []
    for k in range(n):
        params = {}
        for suffix, block in (("", k), ("_reverse", n + k))[:2 if bidirectional else 1]:
            for name, tensor in unpack_lstm_weights(W[block], hidden).items():
                params[f"{name}_l0{suffix}"] = tensor
        outs.append(torch.func.functional_call(lstm, params, (x[k],))[0])
    return torch.stack(outs)


def _torch_pool(seq: Tensor, hidden: int, bidirectional: bool, mode: str, context):
    """``pooled_lstm_layer``'s summaries of ``seq [n, B, T, directions * H]`` in plain torch."""
    if mode == "last":  # each direction's final state: the reverse one ends at position 0
        last = seq[:, :, -1]
        rep = torch.cat([last[..., :hidden], seq[:, :, 0, hidden:]], dim=-1) if bidirectional else last
        return rep, seq.new_empty(0)
    if mode == "attention":
        weights = torch.softmax(torch.einsum("nbtd,nd->nbt", seq, context), dim=2)
    else:
        weights = seq.new_full(seq.shape[:3], 1.0 / seq.shape[2])
    return torch.einsum("nbt,nbtd->nbd", weights, seq), weights


def pooled_lstm_layer(x: Tensor, W: Tensor, hidden: int, bidirectional: bool, mode: str,
                      context: Tensor | None = None):
    """``lstm_layer`` followed by a summary of each sequence's states over its T steps.

    Returns ``rep [n, B, directions * H]`` and ``weights [n, B, T]`` (empty for "last"). ``mode``:
    "attention" (softmax over steps of ``h_t . context[k]``, ``context [n, directions * H]``),
    "uniform" (1/T each) or "last" (the forward direction's last state and the reverse direction's
    state at step 0, i.e. each direction's final state).
    """
    if mode not in POOLINGS:
        raise ValueError(f"mode must be one of {POOLINGS}, got {mode!r}")
    if (mode == "attention") != (context is not None):
        raise ValueError("a context is needed for, and only for, mode='attention'")
    native = use_native(x, W, hidden, context)
    _note_path(native)
    if not native:
        return _torch_pool(lstm_layer(x, W, hidden, bidirectional), hidden, bidirectional, mode, context)
    save = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, W, context))
    rep, weights, *_ = lstm_pool(x, W, context, hidden, bidirectional, mode, save)
    return rep, weights


# -- the operator: the fused CPU kernels -------------------------------------------------------------

class _Workspace:
    """Large per-call buffers, handed back after use and reused by the next call of the same shape.

    Training allocates tens of MB per batch (every step's gates and states). Fresh allocations of that
    size come straight from the OS, and touching their pages cost as much as the arithmetic here.
    Reused buffers also keep their constant parts: the row of ones and the zero initial state.
    """

    def __init__(self, keep: int = 2):
        self._free: dict[tuple, list] = {}
        self._keep = keep
        self._lock = threading.Lock()

    def take(self, key: tuple, make):
        with self._lock:
            free = self._free.get(key)
            if free:
                return free.pop()
        return make()

    def give(self, key: tuple, item) -> None:
        with self._lock:
            free = self._free.setdefault(key, [])
            if len(free) < self._keep:
                free.append(item)


_WORKSPACE = _Workspace()


def _operands(T: int, D: int, K: int, H: int, B: int, like: Tensor) -> Tensor:
    buf = like.new_empty(T + 1, D, K, B)
    buf[:, :, K - 1] = 1.0  # the bias row
    buf[0, :, :H] = 0.0  # h_0
    buf[T, :, H:K - 1] = 0.0  # no step reads inputs there: zero, so that the operator's outputs are defined
    return buf


def _saved(T: int, D: int, H: int, B: int, like: Tensor):
    acts, vs = like.new_empty(T, D, 4 * H, B), like.new_empty(T + 1, D, H, B)
    vs[0] = 0.0  # c_0
    return acts, vs


def _per_block(t: Tensor, n: int, bidirectional: bool, dim: int) -> Tensor:
    """A per-sequence tensor whose ``dim`` holds [forward half; reverse half] -> one entry per block
    (blocks 0..n-1 forward, n..2n-1 reverse) along dim 0, contiguous."""
    if not bidirectional:
        return t.contiguous()
    return torch.cat(t.chunk(2, dim=dim), dim=0).contiguous()


def _fixed_weights(mode: str, T: int, like: Tensor) -> Tensor:
    """The summary's weights by each block's own step for "uniform" (1/T) and "last" (its final step)."""
    if mode == "uniform":
        return like.new_full((T,), 1.0 / T)
    w = like.new_zeros(T)
    w[-1] = 1.0
    return w


def _workspace_key(x: Tensor, W: Tensor, hidden: int, inference: bool) -> tuple:
    """The shape a call's buffers are kept under: the operator takes them, its autograd node gives them back."""
    n, B, T, I, D, K = _shapes(x, W, hidden)
    return (T, D, K, hidden, B, inference)


def _shapes(x: Tensor, W: Tensor, hidden: int):
    n, B, T, I = x.shape
    return n, B, T, I, W.shape[0], hidden + I + 1


# Operators defined with a schema and a CPU kernel (torch.library.define / impl): torch.library.custom_op
# would wrap the kernel in a torch._dynamo guard, whose import cost each process a second on its first call.
torch.library.define("chrombench::lstm_pool", "(Tensor x, Tensor W, Tensor? context, int hidden, bool bidirectional, "
                     "str mode, bool save) -> (Tensor, Tensor, Tensor, Tensor, Tensor)")
torch.library.define("chrombench::lstm_pool_backward", "(Tensor g_rep, Tensor? g_weights, Tensor W, Tensor? context, "
                     "Tensor rep, Tensor weights, Tensor buf, Tensor acts, Tensor vs, int hidden, bool bidirectional, "
                     "str mode, bool need_dx) -> (Tensor, Tensor, Tensor)")
lstm_pool, lstm_pool_backward = torch.ops.chrombench.lstm_pool.default, torch.ops.chrombench.lstm_pool_backward.default


@torch.library.impl("chrombench::lstm_pool", "CPU")
def _lstm_pool(x: Tensor, W: Tensor, context: Tensor | None, hidden: int, bidirectional: bool, mode: str,
               save: bool) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``pooled_lstm_layer`` on the fused kernels (float32 CPU operands, ``hidden % 8 == 0``): returns
    ``(rep, weights, buf, acts, vs)``; the last three are what the backward pass needs (empty unless
    ``save``): the operands with every step's state, the gates and the cell states. They are workspace
    buffers, reused once autograd frees the node that holds them: a direct caller keeping them longer
    must copy them."""
    if x.dtype != torch.float32 or not native_lstm.fits(W) or hidden % 8 or not native_lstm.available():
        raise ValueError("chrombench::lstm_pool runs the fused kernels: float32 CPU tensors, contiguous weights, "
                         "hidden % 8 == 0 (pooled_lstm_layer sends anything else to torch.nn.LSTM)")
    n, B, T, I, D, K = _shapes(x, W, hidden)
    key = _workspace_key(x, W, hidden, torch.is_inference_mode_enabled())
    buf = _WORKSPACE.take(("operands",) + key, lambda: _operands(T, D, K, hidden, B, x))
    Wk = native_lstm.prepare(x, W, buf, hidden, bidirectional)
    acts, vs = _WORKSPACE.take(("saved",) + key, lambda: _saved(T, D, hidden, B, x)) if save else (None, None)
    ctx = _per_block(context, n, bidirectional, 1) if mode == "attention" else None
    weights, rep = native_lstm.attend(buf, Wk, n, hidden, ctx, None if ctx is not None else _fixed_weights(mode, T, x),
                                      acts, vs)
    # Outputs are views of the kernels' genes-last layout, [n, H, B] -> [n, B, H] and [T, n, B] -> [n, B, T]:
    # dropout draws its mask in memory order and torch sums in an order that follows the layout, so
    # another layout would train to other bits than the published columns (rebuilt rows must match).
    rep = (torch.cat([rep[:n], rep[n:]], dim=1) if bidirectional else rep).permute(0, 2, 1)
    if mode != "attention":
        weights = x.new_full((T, n, B), 1.0 / T) if mode == "uniform" else None
    weights = weights.permute(1, 2, 0) if weights is not None else x.new_empty(0)
    if save:
        return rep, weights, buf, acts, vs
    _WORKSPACE.give(("operands",) + key, buf)
    return rep, weights, x.new_empty(0), x.new_empty(0), x.new_empty(0)


@torch.library.register_fake("chrombench::lstm_pool")
def _(x, W, context, hidden, bidirectional, mode, save):
    n, B, T, I, D, K = _shapes(x, W, hidden)
    rep = x.new_empty(n, (2 if bidirectional else 1) * hidden, B).permute(0, 2, 1)
    weights = x.new_empty(T, n, B).permute(1, 2, 0) if mode != "last" else x.new_empty(0)
    if not save:
        return rep, weights, x.new_empty(0), x.new_empty(0), x.new_empty(0)
    return rep, weights, x.new_empty(T + 1, D, K, B), x.new_empty(T, D, 4 * hidden, B), x.new_empty(T + 1, D, hidden, B)


@torch.library.impl("chrombench::lstm_pool_backward", "CPU")
def _lstm_pool_backward(g_rep: Tensor, g_weights: Tensor | None, W: Tensor, context: Tensor | None, rep: Tensor,
                       weights: Tensor, buf: Tensor, acts: Tensor, vs: Tensor, hidden: int, bidirectional: bool,
                       mode: str, need_dx: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients ``(dx or empty, dW, dcontext or empty)`` of ``lstm_pool`` from those of ``rep`` and
    ``weights`` (``g_weights``: None when the weights were not used), by one native pass."""
    n, T, D, B = rep.shape[0], acts.shape[0], acts.shape[1], acts.shape[3]
    g = _per_block(g_rep.permute(0, 2, 1), n, bidirectional, 1)  # [D, H, B]
    dW = torch.empty_like(W)
    dx_steps = buf.new_empty(T, D, buf.shape[2] - hidden - 1, B) if need_dx else None
    d_context = W.new_empty(0)
    if mode == "attention":  # S = sum_t w_t dLoss/dw_t: rep . g, plus the weights' own gradient's share
        by_position = weights.permute(2, 0, 1).contiguous()  # [n, B, T] -> [T, n, B] (no copy: a view)
        S = (rep.permute(0, 2, 1) * g_rep.permute(0, 2, 1)).sum(1)  # summed over [n, H, B] memory, as published
        if g_weights is not None:
            g_weights = g_weights.permute(2, 0, 1).contiguous()
            S = S + (by_position * g_weights).sum(0)
        d = native_lstm.backward(buf, acts, vs, W, hidden, n, dW, dx_steps, g, weights=by_position,
                                 S=S.contiguous(), g_weights=g_weights, context=_per_block(context, n, bidirectional, 1))
        d_context = torch.cat([d[:n], d[n:]], dim=1) if bidirectional else d
    else:
        native_lstm.backward(buf, acts, vs, W, hidden, n, dW, dx_steps, g, fixed=_fixed_weights(mode, T, W))
    if dx_steps is None:
        return W.new_empty(0), dW, d_context
    dx = dx_steps[:, :n] + dx_steps[:, n:].flip(0) if bidirectional else dx_steps  # the reverse ran back to front
    return dx.permute(1, 3, 0, 2), dW, d_context  # [T, n, I, B] -> [n, B, T, I], a view like the outputs


@torch.library.register_fake("chrombench::lstm_pool_backward")
def _(g_rep, g_weights, W, context, rep, weights, buf, acts, vs, hidden, bidirectional, mode, need_dx):
    n, T, B, I = rep.shape[0], acts.shape[0], acts.shape[3], buf.shape[2] - hidden - 1
    return (W.new_empty(T, n, I, B).permute(1, 3, 0, 2) if need_dx else W.new_empty(0), torch.empty_like(W),
            W.new_empty(context.shape if mode == "attention" else 0))


class _Lease:
    """Gives buffers back to the workspace when autograd frees the graph node holding this lease.

    Returning them right after backward would break a second backward through a retained graph
    (``retain_graph=True``, as gradcheck does); tying them to the node's lifetime cannot."""

    def __init__(self, key: tuple, item):
        self.key, self.item = key, item

    def __del__(self):
        try:
            _WORKSPACE.give(self.key, self.item)
        except Exception:  # interpreter shutdown
            pass


def _setup_context(ctx, inputs, output) -> None:
    x, W, context, hidden, bidirectional, mode, save = inputs
    rep, weights, buf, acts, vs = output
    ctx.set_materialize_grads(False)
    # one call: each call replaces the last one's set. A residual left differentiable would hold this
    # node through its grad_fn while the node holds it (ctx.residuals), a cycle that leaked every batch.
    # Fixed (or no) weights: nothing to differentiate, nor to save.
    ctx.mark_non_differentiable(buf, acts, vs, *([weights] if mode != "attention" else []))
    ctx.save_for_backward(W, context, rep, *([weights] if mode == "attention" else []))
    ctx.residuals = (buf, acts, vs) if save else None  # not outputs with a graph: no reference cycle
    if save and buf.numel():  # the buffers go back to the workspace once autograd frees this node
        key = _workspace_key(x, W, hidden, False)  # autograd never runs in inference mode
        ctx.leases = (_Lease(("operands",) + key, buf), _Lease(("saved",) + key, (acts, vs)))
    ctx.settings = (hidden, bidirectional, mode)


def _backward(ctx, g_rep, g_weights, *_):
    if ctx.residuals is None:
        raise RuntimeError("chrombench::lstm_pool was called with save=False: nothing kept for a backward pass")
    W, context, rep, *weights = ctx.saved_tensors
    hidden, bidirectional, mode = ctx.settings
    weights = weights[0] if weights else rep.new_empty(0)
    if g_rep is None:  # only the attention weights were used
        g_rep = torch.zeros_like(rep)
    dx, dW, d_context = lstm_pool_backward(g_rep, g_weights, W, context, rep, weights, *ctx.residuals, hidden,
                                           bidirectional, mode, ctx.needs_input_grad[0])
    return (dx if ctx.needs_input_grad[0] else None, dW,
            d_context if context is not None else None, None, None, None, None)


torch.library.register_autograd("chrombench::lstm_pool", _backward, setup_context=_setup_context)


class BlockLSTM(nn.Module):
    """``n_blocks`` independent LSTMs (one per mark, say), each optionally bidirectional.

    ``forward(x [n_blocks, B, T, input_size])`` -> ``[n_blocks, B, T, directions * hidden_size]``:
    the forward direction's state first, then the reverse direction's aligned to position t, as in
    ``nn.LSTM(bidirectional=True)``. ``weight[k]`` is block k's forward LSTM for ``k < n_blocks``
    and block ``k - n_blocks``'s reverse LSTM after that.
    """

    def __init__(self, n_blocks: int, input_size: int, hidden_size: int, bidirectional: bool = True):
        super().__init__()
        self.n_blocks, self.input_size, self.hidden_size = n_blocks, input_size, hidden_size
        self.directions = 2 if bidirectional else 1
        self.weight = nn.Parameter(torch.empty(self.directions * n_blocks, hidden_size + input_size + 1,
                                               4 * hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.LSTM's initialisation; the bias row is the sum of its two uniform biases.
        bound = 1.0 / math.sqrt(self.hidden_size)
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)
            self.weight[:, -1].add_(torch.empty_like(self.weight[:, -1]).uniform_(-bound, bound))

    def add_forget_bias(self, value: float) -> None:
        """Shift every block's forget-gate bias by ``value``. At 1.0 a fresh LSTM starts by keeping its
        cell state, so an error signal reaches early steps of a long sequence (Gers et al. 2000;
        Jozefowicz et al. 2015): summarising 100 bins by the last state learns nothing otherwise."""
        if not value:
            return
        H = self.hidden_size
        with torch.no_grad():
            for k in range(self.weight.shape[0]):
                torch_layout = unpack_lstm_weights(self.weight[k], H)
                torch_layout["bias_ih"][H:2 * H] += value  # torch's gate order: input, forget, cell, output
                self.weight[k].copy_(pack_lstm_weights(**torch_layout))

    def forward(self, x: Tensor) -> Tensor:
        return lstm_layer(x, self.weight, self.hidden_size, self.directions == 2)

    def summarise(self, x: Tensor, mode: str, context: Tensor | None = None):
        """``x [n_blocks, B, T, input_size]`` -> ``(rep [n_blocks, B, directions * H], weights [n_blocks, B, T])``;
        see ``pooled_lstm_layer``."""
        return pooled_lstm_layer(x, self.weight, self.hidden_size, self.directions == 2, mode, context)

    def _index(self, block: int, reverse: bool) -> int:
        if reverse and self.directions == 1:
            raise ValueError("a unidirectional BlockLSTM has no reverse weights")
        return block + (self.n_blocks if reverse else 0)

    def load_torch_lstm(self, block: int, reverse: bool, weight_ih, weight_hh, bias_ih, bias_hh) -> None:
        """Copy one torch-layout LSTM (``nn.LSTM``'s ``weight_ih_l0`` ...) into a block."""
        with torch.no_grad():
            self.weight[self._index(block, reverse)].copy_(pack_lstm_weights(weight_ih, weight_hh, bias_ih, bias_hh))

    def torch_lstm(self, block: int, reverse: bool) -> dict[str, Tensor]:
        """One block's weights in torch layout: ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``."""
        return unpack_lstm_weights(self.weight[self._index(block, reverse)].detach(), self.hidden_size)
