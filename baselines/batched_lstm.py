"""Many small independent LSTMs run as one batched recurrence, with a hand-written backward pass.

AttentiveChrome runs ten tiny LSTMs over the 100 bins of each gene (five marks, two directions).
Run one after another through ``nn.LSTM`` (as the reference does), every time step costs ten
rounds of small kernels plus ten sets of autograd nodes, and the Python/dispatch overhead swamps
the arithmetic on a CPU. Here all ``D`` LSTMs ("blocks") advance together: one batched matmul
per time step computes every block's gates, and the backward pass is a second hand-written loop
(back-propagation through time) instead of thousands of autograd nodes. Each block's gradient
only ever touches that block's weights, so blocks stay fully independent (no weight masking).

Layout ("feature-major": genes last, so every per-step slice is one contiguous chunk per block):
inputs ``x [T, D, I, B]`` -> hidden states ``h [T, D, H, B]``. A block's weights are one matrix
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


def _split(n_blocks: int, workers: int) -> list[tuple[int, int]]:
    parts = max(1, min(workers, n_blocks))
    edges = [round(k * n_blocks / parts) for k in range(parts + 1)]
    return [(lo, hi) for lo, hi in zip(edges[:-1], edges[1:])]


_THREADS = None


def _run_parallel(fn, ranges) -> None:
    """Run ``fn(lo, hi)`` for each block range, all ranges after the first in helper threads.

    torch releases the GIL inside its kernels, so Python threads keep several cores busy. Unlike
    OpenMP's fork-join per operation, nothing spins at a barrier when a core is briefly taken by
    another process (this machine is shared), which made intra-op threading erratic here.
    """
    global _THREADS
    if len(ranges) == 1:
        fn(*ranges[0])
        return
    if _THREADS is None:
        from concurrent.futures import ThreadPoolExecutor

        # each helper runs its torch ops single-threaded: the parallelism is the helpers themselves
        _THREADS = ThreadPoolExecutor(max_workers=7, thread_name_prefix="chrombench-lstm",
                                      initializer=torch.set_num_threads, initargs=(1,))
    inference = torch.is_inference_mode_enabled()

    def in_caller_mode(lo, hi):  # grad and inference modes are thread-local: mirror the caller's
        with torch.inference_mode(inference), torch.no_grad():
            fn(lo, hi)

    futures = [_THREADS.submit(in_caller_mode, lo, hi) for lo, hi in ranges[1:]]
    try:
        fn(*ranges[0])
    finally:
        for fut in futures:
            fut.result()


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


def _forward_blocks(buf, Wk, saved, H: int, lo: int, hi: int) -> None:
    """All time steps for blocks ``lo:hi``; step t reads ``buf[t]`` and writes h_t into ``buf[t+1, :, :H]``."""
    T = buf.shape[0] - 1
    d, B = hi - lo, buf.shape[-1]
    Wk = Wk[lo:hi]
    ops = buf[:, lo:hi].unbind(0)
    hs = buf[1:, lo:hi, :H].unbind(0)
    if saved is not None:  # every step's gates and states, for the backward pass
        acts, vs, qs = (x[:, lo:hi] for x in saved)
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


def _backward_blocks(dhs, buf, saved, W, H: int, lo: int, hi: int, dW, dx_steps) -> None:
    """Back-propagation through time for blocks ``lo:hi``; writes ``dW[lo:hi]`` (and ``dx_steps``)."""
    acts, vs, qs = (x[:, lo:hi] for x in saved)
    T, d, _, B = acts.shape
    K = buf.shape[2]
    buf, dhs, W = buf[:, lo:hi], dhs[:, lo:hi], W[lo:hi]
    W_h, W_i = W[:, :H, :], W[:, H:K - 1, :]  # dh_{t-1} += W_h @ dgates_t;  dx_t = W_i @ dgates_t
    # Steps are processed in chunks: the factors below are computed for a whole chunk at once (few
    # operations), and a chunk's buffers stay in cache (~1 MB).
    C = max(4, min(T, (1 << 18) // (d * 4 * H * B)))
    deriv = buf.new_empty(C, d, 4 * H, B)
    kc = buf.new_empty(C, d, H, B)
    dgates = buf.new_empty(d, 4 * H, C, B)  # (step, gene) adjacent: a chunk's dW is one matmul
    dW_r = dW[lo:hi]
    dW_r.zero_()
    dc = buf.new_zeros(d, H, B)
    dh = dhs[T - 1]
    for t1 in range(T, 0, -C):
        t0 = max(0, t1 - C)
        n = t1 - t0
        a, q = acts[t0:t1], qs[t0:t1]
        o, i, sg = a[:, :, :H], a[:, :, H:2 * H], a[:, :, 3 * H:]
        # For every step of the chunk: dc_t gains dh_t * kc_t, and each gate's pre-activation gradient
        # is dh_t (gate o) or dc_t (gates i, f, g) times a factor m that does not depend on them.
        tanh_c = torch.mul(q, -2.0).add_(1.0)
        torch.mul(tanh_c, tanh_c, out=kc[:n]).sub_(1.0).mul_(o).neg_()  # o (1 - tanh(c)^2)
        m = deriv[:n]
        torch.mul(a, torch.rsub(a, 1.0), out=m)  # sigmoid' (the g rows are overwritten below)
        g = torch.mul(sg, 2.0).sub_(1.0)
        m[:, :, :H].mul_(tanh_c)  # dh/dz_o
        m[:, :, H:2 * H].mul_(g)  # dc/dz_i
        m[:, :, 2 * H:3 * H].mul_(vs[t0:t1]).mul_(-0.5)  # dc/dz_f = c_{t-1} sigmoid'(z_f)
        torch.mul(g, g, out=m[:, :, 3 * H:]).sub_(1.0).mul_(i).neg_()  # dc/dz_g = i (1 - g^2)
        m_o, m_c = m[:, :, :H].unbind(0), m[:, :, H:].unflatten(2, (3, H)).unbind(0)
        kc_t, f_t, dhs_t = kc[:n].unbind(0), a[:, :, 2 * H:3 * H].unbind(0), dhs[t0:t1].unbind(0)
        dg = dgates[:, :, :n]
        dg_t, dg_o = dg.unbind(2), dg[:, :H].unbind(2)
        dg_c = dg[:, H:].unflatten(1, (3, H)).unbind(3)
        for k in range(n - 1, -1, -1):
            dc.addcmul_(dh, kc_t[k])
            torch.mul(dh, m_o[k], out=dg_o[k])
            torch.mul(dc.unsqueeze(1), m_c[k], out=dg_c[k])
            if t0 + k > 0:
                dc.mul_(f_t[k])
                dh = torch.baddbmm(dhs_t[k - 1] if k > 0 else dhs[t0 - 1], W_h, dg_t[k])
        grads = dg.reshape(d, 4 * H, n * B)
        operands = buf[t0:t1].permute(1, 2, 0, 3).reshape(d, K, n * B)
        dW_r.baddbmm_(operands, grads.transpose(1, 2))
        if dx_steps is not None:
            dx_steps[t0:t1, lo:hi] = torch.bmm(W_i, grads).view(d, -1, n, B).permute(2, 0, 1, 3)


def _scan(x, W, hidden: int, bidirectional: bool, workers: int, save: bool):
    """Fill the operand buffer from ``x [T, n, I, B]`` and run the recurrence of all ``D`` blocks."""
    T, n, I, B = x.shape
    D, H, K = W.shape[0], hidden, hidden + I + 1
    key = (T, D, K, H, B, x.dtype, x.device, torch.is_inference_mode_enabled())
    buf = _WORKSPACE.take(("operands",) + key, lambda: _new_operands(T, D, K, H, B, x))
    buf[:T, :n, H:H + I] = x
    if bidirectional:  # the reverse blocks read the sequence back to front
        buf[:T, n:, H:H + I] = x.flip(0)
    saved = _WORKSPACE.take(("saved",) + key, lambda: _new_saved(T, D, H, B, x)) if save else None
    Wk = W.detach().transpose(1, 2).contiguous()  # [D, 4H, K]: gates = Wk @ [h; x; 1]
    Wk[:, 3 * H:] *= 2  # the g gate's sigmoid(2z), for tanh(z) = 2 sigmoid(2z) - 1
    _run_parallel(lambda lo, hi: _forward_blocks(buf, Wk, saved, H, lo, hi), _split(D, workers))
    out = x.new_empty(T, n, (2 if bidirectional else 1) * H, B)
    out[:, :, :H] = buf[1:, :n, :H]
    if bidirectional:  # back to sequence order
        out[:, :, H:] = buf[1:, n:, :H].flip(0)
    return out, buf, saved, key


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


class _LSTMLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, W, hidden, bidirectional, workers):
        out, buf, saved, key = _scan(x, W, hidden, bidirectional, workers, save=True)
        ctx.save_for_backward(W)
        ctx.buffers = (buf, saved)
        ctx.leases = (_Lease(("operands",) + key, buf), _Lease(("saved",) + key, saved))
        ctx.settings = (hidden, bidirectional, workers, x.shape[1])
        return out

    @staticmethod
    def backward(ctx, d_out):
        (W,), (buf, saved) = ctx.saved_tensors, ctx.buffers
        hidden, bidirectional, workers, n = ctx.settings
        T, D, K, B = buf.shape[0] - 1, buf.shape[1], buf.shape[2], buf.shape[3]
        H, I = hidden, K - hidden - 1
        dhs = d_out.new_empty(T, D, H, B)
        dhs[:, :n] = d_out[:, :, :H]
        if bidirectional:
            dhs[:, n:] = d_out[:, :, H:].flip(0)
        dW = torch.empty_like(W)
        dx_steps = d_out.new_empty(T, D, I, B) if ctx.needs_input_grad[0] else None
        _run_parallel(lambda lo, hi: _backward_blocks(dhs, buf, saved, W, H, lo, hi, dW, dx_steps),
                      _split(D, workers))
        dx = None
        if dx_steps is not None:
            dx = dx_steps[:, :n] + dx_steps[:, n:].flip(0) if bidirectional else dx_steps
        return dx, dW, None, None, None


def lstm_layer(x: torch.Tensor, W: torch.Tensor, hidden: int, bidirectional: bool = False,
               workers: int = 1) -> torch.Tensor:
    """Independent single-layer LSTMs from zero state, one per block of ``W``.

    ``x [T, n, I, B]`` -> ``[T, n, directions * H, B]``. ``W [directions * n, H + I + 1, 4H]``: block
    k < n is sequence k's forward LSTM, block n + k its reverse LSTM, whose states are returned in
    sequence order after the forward ones (as ``nn.LSTM(bidirectional=True)`` does). ``workers`` > 1
    splits the blocks over that many threads.
    """
    if torch.is_grad_enabled() and (x.requires_grad or W.requires_grad):
        return _LSTMLayer.apply(x, W, hidden, bidirectional, workers)
    out, buf, _, key = _scan(x, W, hidden, bidirectional, workers, save=False)
    _WORKSPACE.give(("operands",) + key, buf)
    return out


class BlockLSTM(nn.Module):
    """``n_blocks`` independent LSTMs (one per mark, say), each optionally bidirectional.

    ``forward(x [T, n_blocks, input_size, B])`` -> ``[T, n_blocks, directions * hidden_size, B]``:
    the forward direction's state first, then the reverse direction's aligned to position t, as in
    ``nn.LSTM(bidirectional=True)``. ``weight[k]`` is block k's forward LSTM for ``k < n_blocks``
    and block ``k - n_blocks``'s reverse LSTM after that.
    """

    def __init__(self, n_blocks: int, input_size: int, hidden_size: int, bidirectional: bool = True):
        super().__init__()
        self.n_blocks, self.input_size, self.hidden_size = n_blocks, input_size, hidden_size
        self.directions = 2 if bidirectional else 1
        self.workers = 1  # threads for the recurrence; a runtime setting, not a hyperparameter
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
        return lstm_layer(x, self.weight, self.hidden_size, self.directions == 2, self.workers)

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
