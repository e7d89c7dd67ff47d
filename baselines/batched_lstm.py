"""Many small independent LSTMs: one specification, ``torch.nn.LSTM``, and one fast CPU path.

AttentiveChrome runs ten tiny LSTMs over the 100 bins of each gene (five marks, two directions).
The specification is ``nn.LSTM`` (its gate order, biases and bidirectional layout), and where the
fused kernels do not apply (no compiler or AVX2, float64, a GPU, a hidden size not a multiple of 8)
that is what runs: ``nn.LSTM`` itself, one call per sequence with each block's weights, and plain
torch for the summaries, differentiated by autograd (cuDNN's LSTM on a GPU). ``use_native`` makes
the choice, in one place, and logs each reason once.

The fast CPU path runs all ``D`` LSTMs ("blocks") together in the native kernels
(``native_lstm.py``, ``native/lstm_kernel.c``): a whole sequence with its attention summary in one
call, and its back-propagation through time and through the attention in another, as two
``autograd.Function`` s. Each block's gradient only ever touches that block's weights.

Entry points: ``lstm_layer`` (all hidden states) and ``pooled_lstm_layer`` (attention, uniform or
last-state summaries, as AttentiveChrome needs), both differentiable with respect to inputs and
weights; ``BlockLSTM`` holds the weights as a module.

Layout. Callers see sequences as ``[n, B, T, features]``. The kernels work on ``[D, features, B]``
slices per step, genes last: operands ``buf [T+1, D, H+I+1, B]``, saved gates ``[T, D, 4H, B]``. A
block's weights are one matrix ``W [H + I + 1, 4H]`` acting on ``[h_{t-1}; x_t; 1]``: rows ``0:H``
are ``weight_hh.T``, rows ``H:H+I`` are ``weight_ih.T``, the last row is the summed bias. Gate columns
are ordered (o, i, f, g) (torch orders them i, f, g, o; ``pack_lstm_weights`` /
``unpack_lstm_weights`` convert). The kernels match ``nn.LSTM`` to float32 rounding (~1e-7 relative).
"""

from __future__ import annotations

import logging
import math
import threading

import torch
from torch import nn

from . import native_lstm

log = logging.getLogger("chrombench.lstm")

# Gate order: torch's (i, f, g, o) -> ours (o, i, f, g), as chunk indices of the 4H axis.
_TORCH_TO_OURS = (3, 0, 1, 2)
_OURS_TO_TORCH = (1, 2, 3, 0)


def _reorder_gates(t: torch.Tensor, order, dim: int) -> torch.Tensor:
    chunks = t.chunk(4, dim=dim)
    return torch.cat([chunks[k] for k in order], dim=dim)


def pack_lstm_weights(weight_ih, weight_hh, bias_ih, bias_hh) -> torch.Tensor:
    """torch/reference LSTM tensors (``[4H, I]``, ``[4H, H]``, ``[4H]``, ``[4H]``) -> ``W [H+I+1, 4H]``."""
    bias = (bias_ih + bias_hh).unsqueeze(0)
    stacked = torch.cat([weight_hh.t(), weight_ih.t(), bias], dim=0)
    return _reorder_gates(stacked, _TORCH_TO_OURS, dim=1).contiguous()


def unpack_lstm_weights(W: torch.Tensor, hidden: int) -> dict[str, torch.Tensor]:
    """Inverse of ``pack_lstm_weights``. The summed bias goes to ``bias_ih`` and ``bias_hh`` is zero:
    only their sum is identifiable, as both enter the gates added together."""
    W = _reorder_gates(W, _OURS_TO_TORCH, dim=1)
    weight_hh, weight_ih, bias = W[:hidden], W[hidden:-1], W[-1]
    return {"weight_ih": weight_ih.t().contiguous(), "weight_hh": weight_hh.t().contiguous(),
            "bias_ih": bias.contiguous(), "bias_hh": torch.zeros_like(bias)}


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


def _new_operands(T: int, D: int, K: int, H: int, B: int, like: torch.Tensor) -> torch.Tensor:
    buf = like.new_empty(T + 1, D, K, B)
    buf[:, :, K - 1] = 1.0  # the bias row
    buf[0, :, :H] = 0.0  # h_0
    return buf


def _new_saved(T: int, D: int, H: int, B: int, like: torch.Tensor):
    acts, vs, qs = like.new_empty(T, D, 4 * H, B), like.new_empty(T + 1, D, H, B), like.new_empty(T, D, H, B)
    vs[0] = 0.0  # c_0
    return acts, vs, qs


def _operands(x, W, hidden: int, bidirectional: bool):
    """The operand buffer filled from ``x [n, B, T, I]`` (a reused workspace, read in place with any
    strides), the kernel's weights ``Wk [D, 4H, K]`` and the workspace key."""
    n, B, T, I = x.shape
    D, H, K = W.shape[0], hidden, hidden + I + 1
    key = (T, D, K, H, B, x.dtype, x.device, torch.is_inference_mode_enabled())
    buf = _WORKSPACE.take(("operands",) + key, lambda: _new_operands(T, D, K, H, B, x))
    return buf, native_lstm.prepare(x.detach(), W.detach(), buf, H, bidirectional), key


def _take_saved(key, x, W, hidden: int, save: bool):
    """The arrays a backward pass needs (a reused workspace), or None."""
    T, D, B = x.shape[2], W.shape[0], x.shape[1]
    return _WORKSPACE.take(("saved",) + key, lambda: _new_saved(T, D, hidden, B, x)) if save else None


def _scan(x, W, hidden: int, bidirectional: bool, save: bool):
    """Fill the operand buffer from ``x [n, B, T, I]`` and run the recurrence of all ``D`` blocks;
    returns ``(buf, saved, key)``."""
    buf, Wk, key = _operands(x, W, hidden, bidirectional)
    saved = _take_saved(key, x, W, hidden, save)
    native_lstm.forward(buf, Wk, saved, hidden)
    return buf, saved, key


def _scan_pooled(x, W, hidden: int, bidirectional: bool, mode: str, context, save: bool):
    """``_scan`` then ``_pool_forward``: ``(buf, saved, key, rep [n, directions * H, B], weights [T, n, B])``.
    With attention and the native kernels, one call does both, each sequence summarised while its
    states are still in cache."""
    if mode != "attention":
        buf, saved, key = _scan(x, W, hidden, bidirectional, save)
        return (buf, saved, key, *_pool_forward(buf, x.shape[0], hidden, bidirectional, mode, context))
    n = x.shape[0]
    buf, Wk, key = _operands(x, W, hidden, bidirectional)
    saved = _take_saved(key, x, W, hidden, save)
    weights, rep = native_lstm.attend(buf, Wk, n, hidden, _per_block(context.detach(), n, bidirectional, 1), saved)
    return buf, saved, key, (torch.cat([rep[:n], rep[n:]], dim=1) if bidirectional else rep), weights


def _sequences(buf, n: int, H: int, bidirectional: bool) -> torch.Tensor:
    """The hidden states held in ``buf`` as ``[n, B, T, directions * H]``, in sequence order."""
    T, B = buf.shape[0] - 1, buf.shape[3]
    out = buf.new_empty(n, B, T, (2 if bidirectional else 1) * H)
    out[..., :H] = buf[1:, :n, :H].permute(1, 3, 0, 2)
    if bidirectional:  # the reverse blocks ran back to front
        out[..., H:] = buf[1:, n:, :H].flip(0).permute(1, 3, 0, 2)
    return out


POOLINGS = ("attention", "uniform", "last")


def _pool_forward(buf, n: int, H: int, bidirectional: bool, mode: str, context):
    """Summaries of each sequence's hidden states, read in place from ``buf``: ``rep [n, directions * H,
    B]`` and the weights over positions ``[T, n, B]`` (None for "last", each direction's final state)."""
    if mode != "last":
        return _native_pool_forward(buf, n, H, bidirectional, mode, context)
    hf = buf[-1, :n, :H]  # the forward blocks' last state; the reverse blocks ran back to front
    return (torch.cat([hf, buf[-1, n:, :H]], dim=1) if bidirectional else hf.clone()), None


def _per_block(t: torch.Tensor, n: int, bidirectional: bool, dim: int) -> torch.Tensor:
    """A per-sequence tensor whose ``dim`` holds [forward half; reverse half] -> one entry per block
    (blocks 0..n-1 forward, n..2n-1 reverse) along dim 0, contiguous."""
    if not bidirectional:
        return t.contiguous()
    return torch.cat(t.chunk(2, dim=dim), dim=0).contiguous()


def _step_order(per_position: torch.Tensor, bidirectional: bool) -> torch.Tensor:
    """``[T, n, B]`` indexed by position -> ``[T, D, B]`` indexed by each block's own step."""
    if not bidirectional:
        return per_position.contiguous()
    return torch.cat([per_position, per_position.flip(0)], dim=1)


def _native_pool_forward(buf, n: int, H: int, bidirectional: bool, mode: str, context):
    """``_pool_forward`` through the native passes over ``buf`` (one read of the states each)."""
    T, B = buf.shape[0] - 1, buf.shape[3]
    if mode == "attention":
        dots = native_lstm.block_dots(buf, _per_block(context, n, bidirectional, 1), H)  # [T, D, B]
        scores = dots[:, :n] + dots[:, n:].flip(0) if bidirectional else dots
        weights = torch.softmax(scores, dim=0)
    else:
        weights = buf.new_full((T, n, B), 1.0 / T)
    rep = native_lstm.block_weighted_sum(buf, _step_order(weights, bidirectional), H)  # [D, H, B]
    return (torch.cat([rep[:n], rep[n:]], dim=1) if bidirectional else rep), weights


def _native_pool_factors(buf, n: int, H: int, bidirectional: bool, mode: str, weights, g_rep):
    """For fixed weights ("uniform", "last"): what the native backward needs to form dLoss/dh_t = w_t g
    itself (see ``native_lstm.backward``). Attention goes through ``native_lstm.backward_attention``."""
    T, D, B = buf.shape[0] - 1, buf.shape[1], buf.shape[3]
    g = _per_block(g_rep, n, bidirectional, 1)  # [D, H, B]
    if mode == "last":
        w = buf.new_zeros(T, D, B)
        w[-1] = 1.0
    else:
        w = _step_order(weights, bidirectional)
    return w, g


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


def _backpropagate(ctx, dhs, W, buf, saved, n: int, factors=None, attention=None) -> tuple:
    """BPTT from ``dhs`` (or the native kernel's ``factors``, or through attention pooling with the
    native ``attention`` inputs) through all blocks; returns (dx [n, B, T, I] or None, dW, dLoss/dcontext
    per block [D, H] or None)."""
    hidden, bidirectional = ctx.settings
    T, D, K, B = buf.shape[0] - 1, buf.shape[1], buf.shape[2], buf.shape[3]
    dW = torch.empty_like(W)
    dx_steps = buf.new_empty(T, D, K - hidden - 1, B) if ctx.needs_input_grad[0] else None
    W = W.detach()
    d_context = None
    if attention is not None:
        d_context = native_lstm.backward_attention(buf, saved, W, hidden, n, *attention, dW, dx_steps)
    else:  # dLoss/dh per step: given (dhs), or formed by the kernel from fixed weights (factors)
        native_lstm.backward(dhs, buf, saved, W, hidden, dW, dx_steps, factors)
    dx = None
    if dx_steps is not None:
        dx = dx_steps[:, :n] + dx_steps[:, n:].flip(0) if bidirectional else dx_steps
        dx = dx.permute(1, 3, 0, 2)  # [T, n, I, B] -> [n, B, T, I]
    return dx, dW, d_context


def _keep_for_backward(ctx, buf, saved, key, settings) -> None:
    ctx.buffers = (buf, saved)
    ctx.leases = (_Lease(("operands",) + key, buf), _Lease(("saved",) + key, saved))
    ctx.settings = settings


class _LSTMLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, W, hidden, bidirectional):
        buf, saved, key = _scan(x, W, hidden, bidirectional, save=True)
        ctx.save_for_backward(W)
        _keep_for_backward(ctx, buf, saved, key, (hidden, bidirectional))
        return _sequences(buf, x.shape[0], hidden, bidirectional)

    @staticmethod
    def backward(ctx, d_out):
        (W,), (buf, saved) = ctx.saved_tensors, ctx.buffers
        hidden, bidirectional = ctx.settings
        n, H = d_out.shape[0], hidden
        dhs = d_out.new_empty(buf.shape[0] - 1, buf.shape[1], H, buf.shape[3])
        dhs[:, :n] = d_out[..., :H].permute(2, 0, 3, 1)
        if bidirectional:
            dhs[:, n:] = d_out[..., H:].flip(2).permute(2, 0, 3, 1)
        return (*_backpropagate(ctx, dhs, W, buf, saved, n)[:2], None, None)


class _PooledLSTM(torch.autograd.Function):
    """LSTMs and the summary of their states in one node: the summary reads the hidden states where
    the recurrence left them and its backward writes straight into the recurrence's input, so no
    ``[n, B, T, 2H]`` sequence tensor (or its gradient) is ever assembled."""

    @staticmethod
    def forward(ctx, x, W, context, hidden, bidirectional, mode):
        ctx.set_materialize_grads(False)
        buf, saved, key, rep, weights = _scan_pooled(x, W, hidden, bidirectional, mode, context, save=True)
        ctx.save_for_backward(W, context, weights, rep)
        _keep_for_backward(ctx, buf, saved, key, (hidden, bidirectional))
        ctx.mode, ctx.n = mode, x.shape[0]
        weights_out = rep.new_empty(0) if weights is None else weights.permute(1, 2, 0)  # [n, B, T]
        if mode != "attention":  # fixed (or no) weights: nothing to differentiate
            ctx.mark_non_differentiable(weights_out)
        return rep.permute(0, 2, 1), weights_out

    @staticmethod
    def backward(ctx, g_rep, g_weights):
        W, context, weights, rep = ctx.saved_tensors
        buf, saved = ctx.buffers
        hidden, bidirectional = ctx.settings
        n = ctx.n
        if g_rep is None:  # only the attention weights were used
            g_rep = buf.new_zeros(n, buf.shape[3], (2 if bidirectional else 1) * hidden)
        if g_weights is not None:
            g_weights = g_weights.permute(2, 0, 1)  # [n, B, T] -> [T, n, B]
        if ctx.mode == "attention":
            # the kernel differentiates the pooling too: S = sum_t w_t dLoss/dw_t = rep . g (+ the weights' own share)
            g = g_rep.permute(0, 2, 1)  # [n, directions * H, B]
            S = (rep * g).sum(1)
            if g_weights is not None:
                g_weights = g_weights.contiguous()
                S = S + (weights * g_weights).sum(0)
            attention = (weights, _per_block(g, n, bidirectional, 1), S.contiguous(), g_weights,
                         _per_block(context.detach(), n, bidirectional, 1))
            dx, dW, d_context = _backpropagate(ctx, None, W, buf, saved, n, attention=attention)
            if bidirectional:
                d_context = torch.cat([d_context[:n], d_context[n:]], dim=1)
            return dx, dW, d_context, None, None, None
        # fixed weights ("uniform", "last"): dLoss/dh_t = w_t g, formed by the kernel
        factors = _native_pool_factors(buf, n, hidden, bidirectional, ctx.mode, weights, g_rep.permute(0, 2, 1))
        dx, dW, _ = _backpropagate(ctx, None, W, buf, saved, n, factors)
        return dx, dW, None, None, None, None


_said: set = set()


def use_native(x: torch.Tensor, W: torch.Tensor, hidden: int, context: torch.Tensor | None = None) -> bool:
    """The one place the path is chosen: the fused kernels for float32 CPU operands when they are built
    (and ``hidden % 8 == 0``), else ``nn.LSTM`` itself (cuDNN on a GPU). Each reason is logged once."""
    operands = (x, W) if context is None else (x, W, context)
    if all(t.device.type == "cpu" and t.dtype == torch.float32 for t in operands) and \
            native_lstm.usable(W, hidden=hidden):
        return True
    why = (native_lstm.unavailable_reason() or f"hidden size {hidden} is not a multiple of 8"
           if x.device.type == "cpu" and x.dtype == torch.float32 else f"{x.dtype} on {x.device.type}")
    if why not in _said:
        _said.add(why)
        log.info("LSTM layers run as torch.nn.LSTM (%s)", why)
    return False


_LSTM_TEMPLATES: dict = {}


def _torch_lstm(x: torch.Tensor, W: torch.Tensor, hidden: int, bidirectional: bool) -> torch.Tensor:
    """The specification, run as is: ``nn.LSTM(batch_first=True)`` per sequence with block k's weights
    (and block n + k's as the reverse direction), differentiable through ``W`` by autograd.
    ``x [n, B, T, I]`` -> ``[n, B, T, directions * H]``."""
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


def _torch_pool(seq: torch.Tensor, hidden: int, bidirectional: bool, mode: str, context):
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


def lstm_layer(x: torch.Tensor, W: torch.Tensor, hidden: int, bidirectional: bool = False) -> torch.Tensor:
    """Independent single-layer LSTMs from zero state, one per block of ``W``.

    ``x [n, B, T, I]`` -> ``[n, B, T, directions * H]`` (n sequences of T steps for each of B genes,
    like ``nn.LSTM(batch_first=True)`` per sequence). ``W [directions * n, H + I + 1, 4H]``: block
    k < n is sequence k's forward LSTM, block n + k its reverse LSTM, whose states are returned in
    sequence order after the forward ones (as ``nn.LSTM(bidirectional=True)`` does).
    """
    if not use_native(x, W, hidden):
        return _torch_lstm(x, W, hidden, bidirectional)
    if torch.is_grad_enabled() and (x.requires_grad or W.requires_grad):
        return _LSTMLayer.apply(x, W, hidden, bidirectional)
    buf, _, key = _scan(x, W, hidden, bidirectional, save=False)
    out = _sequences(buf, x.shape[0], hidden, bidirectional)
    _WORKSPACE.give(("operands",) + key, buf)
    return out


def pooled_lstm_layer(x: torch.Tensor, W: torch.Tensor, hidden: int, bidirectional: bool, mode: str,
                      context: torch.Tensor | None = None):
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
    if not use_native(x, W, hidden, context):
        return _torch_pool(_torch_lstm(x, W, hidden, bidirectional), hidden, bidirectional, mode, context)
    grads = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, W, context))
    if grads:
        return _PooledLSTM.apply(x, W, context, hidden, bidirectional, mode)
    buf, _, key, rep, weights = _scan_pooled(x, W, hidden, bidirectional, mode, context, save=False)
    _WORKSPACE.give(("operands",) + key, buf)
    return rep.permute(0, 2, 1), (weights.permute(1, 2, 0) if weights is not None else rep.new_empty(0))


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return lstm_layer(x, self.weight, self.hidden_size, self.directions == 2)

    def summarise(self, x: torch.Tensor, mode: str, context: torch.Tensor | None = None):
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

    def torch_lstm(self, block: int, reverse: bool) -> dict[str, torch.Tensor]:
        """One block's weights in torch layout: ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``."""
        return unpack_lstm_weights(self.weight[self._index(block, reverse)].detach(), self.hidden_size)
