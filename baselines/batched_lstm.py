"""Many small independent LSTMs run as one batched recurrence, with a hand-written backward pass.

AttentiveChrome runs ten tiny LSTMs over the 100 bins of each gene (five marks, two directions).
Run one after another through ``nn.LSTM`` (as the reference does), every time step costs ten
rounds of small kernels plus ten sets of autograd nodes, and the Python/dispatch overhead swamps
the arithmetic on a CPU. Here all ``D`` LSTMs ("blocks") advance together: one batched matmul
per time step computes every block's gates, and the backward pass is a second hand-written loop
(back-propagation through time) instead of thousands of autograd nodes. Each block's gradient
only ever touches that block's weights, so blocks stay fully independent (no weight masking).

Entry points: ``lstm_layer`` (all hidden states) and ``pooled_lstm_layer`` (attention, uniform or
last-state summaries computed where the states lie, as AttentiveChrome needs), both differentiable
with respect to inputs and weights; ``BlockLSTM`` holds the weights as a module.

Layout. Callers see sequences as ``[n, B, T, features]``. Inside, each time step
works on ``[D, features, B]`` slices, genes last, so that every block's slice is one contiguous chunk:
operands ``buf [T+1, D, H+I+1, B]``, saved gates ``[T, D, 4H, B]``. A block's weights are one matrix
``W [H + I + 1, 4H]`` acting on ``[h_{t-1}; x_t; 1]``: rows ``0:H`` are ``weight_hh.T``, rows
``H:H+I`` are ``weight_ih.T``, the last row is the summed bias. Gate columns are ordered
(o, i, f, g) so that one ``sigmoid_`` covers o, i and f (torch and the reference order gates as
i, f, g, o; ``pack_lstm_weights`` / ``unpack_lstm_weights`` convert).

Speed notes (measured on the 2-core CPU this was written on): ``torch.tanh`` is ~15x slower per
element than ``torch.sigmoid`` on small float32 tensors, so tanh is computed as
``tanh(z) = 2 sigmoid(2z) - 1``: the kernel doubles the g-gate rows of its copy of ``W`` and keeps
``v = -2c`` as its cell state, so that ``h = o * tanh(c) = o - 2 o sigmoid(v)`` is one ``addcmul``.
Results match ``nn.LSTM`` to float32 rounding (~1e-7 relative).
"""

from __future__ import annotations

import math
import threading

import torch
from torch import nn

from . import native_lstm

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


def _forward_steps(buf, Wk, saved, H: int) -> None:
    """All time steps of all blocks; step t reads ``buf[t]`` and writes h_t into ``buf[t+1, :, :H]``."""
    T, d, _, B = buf.shape
    T -= 1
    ops = buf.unbind(0)
    hs = buf[1:, :, :H].unbind(0)
    if saved is not None:  # every step's gates and states, for the backward pass
        acts, vs, qs = saved
        a_t = acts.unbind(0)
        o_t, i_t, f_t, g_t = (acts[:, :, k * H:(k + 1) * H].unbind(0) for k in range(4))
        v_t, q_t = vs.unbind(0), qs.unbind(0)
    else:  # inference: a few small buffers reused at every step
        a = buf.new_empty(d, 4 * H, B)
        a_t, o_t, i_t, f_t, g_t = ([x] * T for x in (a, a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]))
        v_t = [buf.new_zeros(d, H, B), buf.new_empty(d, H, B)] * (T // 2 + 1)
        q_t = [buf.new_empty(d, H, B)] * T
    for t in range(T):
        torch.bmm(Wk, ops[t], out=a_t[t])
        a_t[t].sigmoid_()
        # c' = f c + i g with g = 2 sg - 1 (sg: the g gate's sigmoid), carried as v = -2c:
        # v' = f v - 4 i sg + 2 i;  then tanh(c') = 1 - 2 sigmoid(v') and h' = o - 2 o sigmoid(v')
        v = v_t[t + 1]
        torch.mul(f_t[t], v_t[t], out=v)
        v.addcmul_(i_t[t], g_t[t], value=-4.0)
        v.add_(i_t[t], alpha=2.0)
        torch.sigmoid(v, out=q_t[t])
        torch.addcmul(o_t[t], o_t[t], q_t[t], value=-2.0, out=hs[t])


_CHUNK_BYTES = 1 << 20  # gate factors computed at once in backward: ~1 MB fits the L2 cache (measured best)


def _backward_steps(dhs, buf, saved, W, H: int, dW, dx_steps) -> None:
    """Back-propagation through time for all blocks; writes ``dW`` (and ``dx_steps`` if given)."""
    acts, vs, qs = saved
    T, d, _, B = acts.shape
    K = buf.shape[2]
    W_h, W_i = W[:, :H, :], W[:, H:K - 1, :]  # dh_{t-1} += W_h @ dgates_t;  dx_t = W_i @ dgates_t
    # Steps are processed in chunks: the gate factors below are computed for a whole chunk at once
    # (a few operations per chunk instead of per step), and a chunk stays in cache (_CHUNK_BYTES).
    C = max(1, min(T, _CHUNK_BYTES // (4 * d * 4 * H * B)))
    deriv = buf.new_empty(C, d, 4 * H, B)
    kq = buf.new_empty(C, d, H, B)
    dgates = buf.new_empty(d, 4 * H, C, B)  # (step, gene) adjacent: a chunk's dW is one matmul
    dW.zero_()
    ndc = buf.new_zeros(d, H, B)  # minus dLoss/dc: saves a negation per factor below
    ndc_gates = ndc.unsqueeze(1)  # the same memory, broadcast over gates i, f, g
    dh = dhs[T - 1]
    for t1 in range(T, 0, -C):
        t0 = max(0, t1 - C)
        n = t1 - t0
        a, q = acts[t0:t1], qs[t0:t1]
        o, i, sg = a[:, :, :H], a[:, :, H:2 * H], a[:, :, 3 * H:]
        # With tanh(c) = 1 - 2q and g = 2 sg - 1 (sg, q: sigmoids kept by the forward pass), per step:
        #   dc_t = dc_{t+1} f_{t+1} + 4 dh_t o q (1 - q)
        #   dz_o = dh (1 - 2q) o'   dz_i = dc (2 sg - 1) i'   dz_f = dc c_{t-1} f'   dz_g = dc i 4 sg'
        # where x' = x (1 - x) is the sigmoid's derivative. Carrying ndc = -dc flips the last three.
        torch.addcmul(q, q, q, value=-1.0, out=kq[:n]).mul_(o)  # o q (1 - q)
        m = deriv[:n]
        torch.addcmul(a, a, a, value=-1.0, out=m)  # x' for all four gate rows
        m[:, :, :H].mul_(torch.rsub(q, 1.0, alpha=2.0))  # dz_o / dh
        m[:, :, H:2 * H].mul_(torch.rsub(sg, 1.0, alpha=2.0))  # dz_i / ndc
        m[:, :, 2 * H:3 * H].mul_(vs[t0:t1]).mul_(0.5)  # dz_f / ndc, with c_{t-1} = -v_{t-1} / 2
        m[:, :, 3 * H:].mul_(i).mul_(-4.0)  # dz_g / ndc
        m_o, m_c = m[:, :, :H].unbind(0), m[:, :, H:].unflatten(2, (3, H)).unbind(0)
        kq_t, f_t, dhs_t = kq[:n].unbind(0), a[:, :, 2 * H:3 * H].unbind(0), dhs[t0:t1].unbind(0)
        dg = dgates[:, :, :n]
        dg_t, dg_o = dg.unbind(2), dg[:, :H].unbind(2)
        dg_c = dg[:, H:].unflatten(1, (3, H)).unbind(3)
        for k in range(n - 1, -1, -1):
            ndc.addcmul_(dh, kq_t[k], value=-4.0)
            torch.mul(dh, m_o[k], out=dg_o[k])
            torch.mul(ndc_gates, m_c[k], out=dg_c[k])
            if t0 + k > 0:
                ndc.mul_(f_t[k])
                dh = torch.baddbmm(dhs_t[k - 1] if k > 0 else dhs[t0 - 1], W_h, dg_t[k])
        grads = dg.reshape(d, 4 * H, n * B)
        operands = buf[t0:t1].permute(1, 2, 0, 3).reshape(d, K, n * B)
        dW.baddbmm_(operands, grads.transpose(1, 2))
        if dx_steps is not None:
            dx_steps[t0:t1] = torch.bmm(W_i, grads).view(d, -1, n, B).permute(2, 0, 1, 3)


def _operands(x, W, hidden: int, bidirectional: bool):
    """The operand buffer filled from ``x [n, B, T, I]`` (a reused workspace), the kernel's weights
    ``Wk [D, 4H, K]`` and the workspace key."""
    n, B, T, I = x.shape
    D, H, K = W.shape[0], hidden, hidden + I + 1
    key = (T, D, K, H, B, x.dtype, x.device, torch.is_inference_mode_enabled())
    buf = _WORKSPACE.take(("operands",) + key, lambda: _new_operands(T, D, K, H, B, x))
    W = W.detach()
    if native_lstm.usable(buf, W, hidden=hidden):  # buf has x's dtype and device
        return buf, native_lstm.prepare(x.detach(), W, buf, H, bidirectional), key  # x read in place, any strides
    steps = x.permute(2, 0, 3, 1)  # [T, n, I, B]
    buf[:T, :n, H:H + I] = steps
    if bidirectional:  # the reverse blocks read the sequence back to front
        buf[:T, n:, H:H + I] = steps.flip(0)
    Wk = W.transpose(1, 2).contiguous()  # [D, 4H, K]: gates = Wk @ [h; x; 1]
    Wk[:, 3 * H:] *= 2  # the g gate's sigmoid(2z), for tanh(z) = 2 sigmoid(2z) - 1
    return buf, Wk, key


def _take_saved(key, x, W, hidden: int, save: bool):
    """The arrays a backward pass needs (a reused workspace), or None."""
    T, D, B = x.shape[2], W.shape[0], x.shape[1]
    return _WORKSPACE.take(("saved",) + key, lambda: _new_saved(T, D, hidden, B, x)) if save else None


def _scan(x, W, hidden: int, bidirectional: bool, save: bool):
    """Fill the operand buffer from ``x [n, B, T, I]`` and run the recurrence of all ``D`` blocks;
    returns ``(buf, saved, key)``."""
    buf, Wk, key = _operands(x, W, hidden, bidirectional)
    saved = _take_saved(key, x, W, hidden, save)
    if native_lstm.usable(buf, Wk, *(saved or ()), hidden=hidden):
        native_lstm.forward(buf, Wk, saved, hidden)
    else:
        _forward_steps(buf, Wk, saved, hidden)
    return buf, saved, key


def _scan_pooled(x, W, hidden: int, bidirectional: bool, mode: str, context, save: bool):
    """``_scan`` then ``_pool_forward``: ``(buf, saved, key, rep [n, directions * H, B], weights [T, n, B])``.
    With attention and the native kernels, one call does both, each sequence summarised while its
    states are still in cache."""
    if mode != "attention" or x.dtype != W.dtype or not native_lstm.usable(W, context, hidden=hidden):
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


def _step_chunks(T: int, n: int, H: int, B: int):
    """Slices of the T steps whose ``[steps, n, H, B]`` temporaries stay near 1 MB: products of that
    size come from reused heap memory and stay in cache, whole-sequence ones (tens of MB at large
    batches) cost page faults and memory traffic that dominated the pooling when written plainly."""
    size = max(1, min(T, (1 << 18) // (n * H * B)))
    return [slice(t, min(T, t + size)) for t in range(0, T, size)]


def _dots(h, v, out):
    """``out[t, j, b] = sum_k h[t, j, k, b] v[j, k, b]`` (``v`` broadcasts over steps)."""
    for c in _step_chunks(*h.shape):
        torch.sum(h[c] * v, dim=2, out=out[c])
    return out


def _weighted_sum(h, weights):
    """``sum_t weights[t, j, b] h[t, j, :, b]`` -> ``[n, H, B]``."""
    total = None
    for c in _step_chunks(*h.shape):
        part = (h[c] * weights[c, :, None]).sum(0)
        total = part if total is None else total.add_(part)
    return total


def _pool_forward(buf, n: int, H: int, bidirectional: bool, mode: str, context):
    """Summaries of each sequence's hidden states, read in place from ``buf``.

    Returns ``rep [n, directions * H, B]`` and the weights over positions ``[T, n, B]`` (None for
    "last"). "attention": softmax over positions of ``h_t . context``; "uniform": 1/T each;
    "last": each direction's final state.
    """
    if mode != "last" and native_lstm.usable(buf, context, hidden=H):
        return _native_pool_forward(buf, n, H, bidirectional, mode, context)
    hf = buf[1:, :n, :H]  # [T, n, H, B]: forward states at positions 0..T-1
    hr = buf[1:, n:, :H] if bidirectional else None  # reverse states in step order: position T-1-t
    if mode == "last":
        return torch.cat([hf[-1], hr[-1]], dim=1) if bidirectional else hf[-1].clone(), None
    T, B = hf.shape[0], hf.shape[3]
    if mode == "attention":
        scores = _dots(hf, context[:, :H, None], hf.new_empty(T, n, B))
        if bidirectional:
            scores += _dots(hr, context[:, H:, None], hf.new_empty(T, n, B)).flip(0)
        weights = torch.softmax(scores, dim=0)
    else:
        weights = hf.new_full((T, n, B), 1.0 / T)
    parts = [_weighted_sum(hf, weights)]
    if bidirectional:
        parts.append(_weighted_sum(hr, weights.flip(0)))
    return torch.cat(parts, dim=1), weights


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


def _pool_backward(buf, n: int, H: int, bidirectional: bool, mode: str, context, weights, g_rep, g_weights, dhs):
    """Writes dLoss/dh for every step into ``dhs [T, D, H, B]``; returns dLoss/dcontext (or None)."""
    gf = g_rep[:, :H]  # [n, H, B]
    gr = g_rep[:, H:] if bidirectional else None
    if mode == "last":
        dhs.zero_()
        dhs[-1, :n] = gf
        if bidirectional:
            dhs[-1, n:] = gr
        return None
    weights_r = weights.flip(0) if bidirectional else None
    torch.mul(weights[:, :, None], gf, out=dhs[:, :n])
    if bidirectional:
        torch.mul(weights_r[:, :, None], gr, out=dhs[:, n:])
    if mode != "attention":
        return None
    T, B = weights.shape[0], weights.shape[2]
    hf = buf[1:, :n, :H]
    hr = buf[1:, n:, :H] if bidirectional else None
    d_weights = _dots(hf, gf, hf.new_empty(T, n, B))
    if bidirectional:
        d_weights += _dots(hr, gr, hf.new_empty(T, n, B)).flip(0)
    if g_weights is not None:
        d_weights += g_weights
    d_scores = weights * (d_weights - (weights * d_weights).sum(0, keepdim=True))  # through the softmax
    dhs[:, :n].addcmul_(d_scores[:, :, None], context[:, :H, None])
    d_context = [_weighted_sum(hf, d_scores).sum(2)]
    if bidirectional:
        d_scores = d_scores.flip(0)
        dhs[:, n:].addcmul_(d_scores[:, :, None], context[:, H:, None])
        d_context.append(_weighted_sum(hr, d_scores).sum(2))
    return torch.cat(d_context, dim=1)


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
    elif factors is not None:
        native_lstm.backward(None, buf, saved, W, hidden, dW, dx_steps, factors)
    elif native_lstm.usable(dhs, buf, *saved, W, dW, dx_steps, hidden=hidden):
        native_lstm.backward(dhs, buf, saved, W, hidden, dW, dx_steps)
    else:
        _backward_steps(dhs, buf, saved, W, hidden, dW, dx_steps)
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
        if ctx.mode == "attention" and native_lstm.usable(buf, *saved, W, context, weights, hidden=hidden):
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
        if ctx.mode != "attention" and native_lstm.usable(buf, *saved, W, hidden=hidden):  # dLoss/dh_t = w_t g
            factors = _native_pool_factors(buf, n, hidden, bidirectional, ctx.mode, weights, g_rep.permute(0, 2, 1))
            dx, dW, _ = _backpropagate(ctx, None, W, buf, saved, n, factors)
            return dx, dW, None, None, None, None
        dhs = buf.new_empty(buf.shape[0] - 1, buf.shape[1], hidden, buf.shape[3])
        d_context = _pool_backward(buf, n, hidden, bidirectional, ctx.mode, context, weights,
                                   g_rep.permute(0, 2, 1), g_weights, dhs)
        dx, dW, _ = _backpropagate(ctx, dhs, W, buf, saved, n)
        return dx, dW, d_context, None, None, None


def lstm_layer(x: torch.Tensor, W: torch.Tensor, hidden: int, bidirectional: bool = False) -> torch.Tensor:
    """Independent single-layer LSTMs from zero state, one per block of ``W``.

    ``x [n, B, T, I]`` -> ``[n, B, T, directions * H]`` (n sequences of T steps for each of B genes,
    like ``nn.LSTM(batch_first=True)`` per sequence). ``W [directions * n, H + I + 1, 4H]``: block
    k < n is sequence k's forward LSTM, block n + k its reverse LSTM, whose states are returned in
    sequence order after the forward ones (as ``nn.LSTM(bidirectional=True)`` does).
    """
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
