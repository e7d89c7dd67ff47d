"""The fused LSTM kernels of ``native/lstm_kernel.c``, called through ``native_library``.

``batched_lstm`` calls them inside the ``chrombench::lstm_pool`` operator: ``prepare`` (the operands),
``attend`` (the recurrence and its summary), ``backward`` (through both). Where the native library
cannot be used ``available()`` is False and ``batched_lstm`` runs ``torch.nn.LSTM`` (the
specification) instead, which computes the same function, only slower. ctypes releases the GIL during
the calls, so Python threads (as the attribution methods use) run them in parallel.

The kernels are built for AVX2 and for AVX-512 and run on the widest vectors the CPU has;
``$CHROMBENCH_NATIVE_ISA`` (``avx2``, ``avx512``; ``auto`` or unset: the widest) overrides that,
and ``isa()`` says which runs. Both compute the same function; their last bits differ.
"""

from __future__ import annotations

import ctypes
import os
import threading
from contextlib import contextmanager

import torch

from .native_library import available, fits, function, unavailable_reason  # noqa: F401 - this module's API


def _ptr(t: torch.Tensor | None):
    return None if t is None else ctypes.c_void_p(t.data_ptr())


_local = threading.local()

ISAS = {"avx2": 256, "avx512": 512}  # the instruction sets the kernels are built for: vector bits
ISA_VARIABLE = "CHROMBENCH_NATIVE_ISA"
_isa_lock = threading.Lock()
_isa_state: dict = {}  # "name" once the environment's choice is applied


def isa() -> str:
    """The instruction set the kernels run on: ``$CHROMBENCH_NATIVE_ISA`` if set, else the widest the CPU has."""
    if "name" not in _isa_state:
        with _isa_lock:
            if "name" not in _isa_state:
                wanted = os.environ.get(ISA_VARIABLE, "").strip().lower()
                _isa_state["name"] = _choose(wanted) if wanted not in ("", "auto") else _current()
    return _isa_state["name"]


def use_isa(name: str) -> str:
    """Run later kernel calls on ``name`` ("avx2" or "avx512"); returns the one in use before."""
    before = isa()
    with _isa_lock:
        _isa_state["name"] = _choose(name)
    return before


def _choose(name: str) -> str:
    if name not in ISAS:
        raise ValueError(f"{ISA_VARIABLE}={name!r}: use one of auto, {', '.join(ISAS)}")
    if function("cb_lstm_isa")(ISAS[name]) != ISAS[name]:
        raise ValueError(f"{ISA_VARIABLE}={name!r}: this CPU (or its operating system) cannot run {name}")
    return name


def _current() -> str:
    bits = function("cb_lstm_isa")(0)
    return next(name for name, b in ISAS.items() if b == bits)


def default_threads() -> int:
    """Threads a kernel call may use: ``$CHROMBENCH_NATIVE_THREADS`` (set for each of several local
    workers, so that they share the cores), else torch's intra-op thread count."""
    env = os.environ.get("CHROMBENCH_NATIVE_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, torch.get_num_threads())


@contextmanager
def threads(n: int):
    """Kernel calls made by this Python thread inside the block use ``n`` threads.

    The trainer runs torch single-threaded (its OpenMP threads spin between the small operations and
    took the cores from these kernels: an epoch ran 1.5x slower with both active), so it hands the
    cores to the kernels explicitly."""
    before = getattr(_local, "n", None)
    _local.n = max(1, int(n))
    try:
        yield
    finally:
        _local.n = before


def _threads() -> int:
    n = getattr(_local, "n", None)
    return n if n is not None else max(1, torch.get_num_threads())


def prepare(x: torch.Tensor, W: torch.Tensor, buf: torch.Tensor, hidden: int, bidirectional: bool) -> torch.Tensor:
    """Fill ``buf``'s input rows from ``x [n, B, T, I]`` (any strides; the reverse blocks get the sequence
    back to front) and return the kernels' weights ``Wk [D, 4H, K]`` from ``W [D, K, 4H]``."""
    n, B, T, I = x.shape
    D, K, G = W.shape
    isa()  # the environment's choice applies before the first kernel runs
    Wk = W.new_empty(D, G, K)
    sn, sb, st, si = x.stride()
    function("cb_prepare")(T, n, 2 if bidirectional else 1, K, hidden, I, B, _ptr(x), sn, sb, st, si, _ptr(W), _ptr(buf),
                          _ptr(Wk))
    return Wk


def attend(buf: torch.Tensor, Wk: torch.Tensor, n: int, hidden: int, context, fixed, acts=None, vs=None):
    """The recurrence of all blocks and each block's summary in one call; returns ``(weights [T, n, B]
    or None, rep [D, H, B])``. With ``context [D, H]`` (one vector per block; blocks ``n..2n-1``, if any,
    run sequence ``d - n`` backwards) the summary is attention: weights are the softmax over positions
    of the summed directions' scores ``h . context``; else ``fixed [T]`` weighs each block's own steps.
    ``acts``, ``vs``: where to keep what ``backward`` needs (None: inference)."""
    T1, D, K, B = buf.shape
    scores = buf.new_empty(T1 - 1, D, B) if context is not None else None
    weights = buf.new_empty(T1 - 1, n, B) if context is not None else None
    rep = buf.new_empty(D, hidden, B)
    _check(function("cb_lstm_attend")(T1 - 1, n, D, K, hidden, B, _ptr(buf), _ptr(Wk), _ptr(acts), _ptr(vs),
                                     _ptr(context), _ptr(fixed), _ptr(scores), _ptr(weights), _ptr(rep), _threads()))
    return weights, rep


def backward(buf, acts, vs, W, hidden: int, n: int, dW, dx_steps, g, fixed=None, weights=None, S=None,
             g_weights=None, context=None):
    """Back-propagation through the summary and the recurrence: writes ``dW`` (and ``dx_steps [T, D, I, B]``
    if given) from ``g [D, H, B]`` = dLoss/drep; returns dLoss/dcontext ``[D, H]`` (attention) or None.

    Fixed summary weights: ``fixed [T]``. Attention: ``weights [T, n, B]`` (by position), ``S [n, B]``
    (``sum_t weights_t dLoss/dweights_t``, i.e. rep . g plus the weights' own gradient's share),
    ``g_weights [T, n, B]`` or None, ``context [D, H]``. The gradient at each step is formed inside
    the kernel, with no pass over the states before or after."""
    T, D, _, B = acts.shape
    d_context = buf.new_empty(D, hidden) if context is not None else None
    _check(function("cb_lstm_backward")(T, n, D, buf.shape[2], hidden, B, _ptr(buf), _ptr(acts), _ptr(vs), _ptr(W),
                                       _ptr(dW), _ptr(dx_steps), _ptr(fixed), _ptr(weights), _ptr(g), _ptr(S),
                                       _ptr(g_weights), _ptr(context), _ptr(d_context), _threads()))
    return d_context


def _check(status: int) -> None:
    if status:
        raise MemoryError("the fused LSTM kernel could not allocate its scratch memory")
