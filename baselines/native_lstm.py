"""The fused AVX2 LSTM kernels of ``native/lstm_kernel.c``: built on first use, then loaded through ctypes.

``batched_lstm`` calls them inside the ``chrombench::lstm_pool`` operator: ``attend`` (the recurrence
and its summary), ``backward`` (through both), ``prepare`` (the operands); the trainer's optimizer
step is ``adam_step``: at batch 16 the torch operations around the kernels had come to a third of a
training step.

Nothing is compiled at install time, so chrombench stays a pure-Python package. The first time a CPU
recurrence runs, the C file is compiled with the system's C compiler (``$CC``, else ``cc``; about a
second) into ``$CHROMBENCH_HOME/native/`` under a name that hashes the source, compiler and flags,
and later processes load that file. Where the kernels cannot be used (no compiler, no AVX2/FMA, not
Linux or macOS on x86-64, ``CHROMBENCH_NATIVE=0``) ``available()`` is False and ``batched_lstm``
runs ``torch.nn.LSTM`` (the specification) instead, which computes the same function, only slower; the
reason is logged once. ctypes releases the GIL during the calls, so Python threads (as the
attribution methods use) run them in parallel.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import torch

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("native") / "lstm_kernel.c"
FLAGS = ("-O3", "-mavx2", "-mfma", "-fPIC", "-shared", "-pthread", "-fno-math-errno")
ABI_VERSION = 11

_lock = threading.Lock()
_state: dict = {}  # "lib" once loaded, "why" once refused


def _cpu_has_avx2_fma() -> bool:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:  # not Linux: trust the compiler's target only if the CPU says so
        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.leaf7_features", "machdep.cpu.features"],
                                 capture_output=True, text=True, timeout=5).stdout.upper()
        except (OSError, subprocess.SubprocessError):
            return False
        return "AVX2" in out and "FMA" in out
    return "avx2" in flags and "fma" in flags


def _cache_dir() -> Path:
    from chrombench.data.store import home  # the one place CHROMBENCH_HOME is resolved

    return home() / "native"


def _build(compiler: str) -> Path:
    source = SOURCE.read_bytes()
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    digest = hashlib.sha256(source + "\0".join(FLAGS).encode() + version.encode()).hexdigest()[:16]
    target = _cache_dir() / f"lstm_kernel-{digest}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # compile beside the target and rename: a concurrent process sees no file or a whole one
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=".lstm_kernel-", suffix=".so")
    os.close(fd)
    try:
        done = subprocess.run([compiler, *FLAGS, str(SOURCE), "-o", partial, "-lm"],
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"{compiler} failed on {SOURCE.name}: {done.stderr.strip()[:500]}")
        os.chmod(partial, 0o755)
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return target


def _load():
    if os.environ.get("CHROMBENCH_NATIVE", "1").strip().lower() in ("0", "no", "false", "off"):
        raise RuntimeError("CHROMBENCH_NATIVE=0")
    if not _cpu_has_avx2_fma():
        raise RuntimeError("the CPU has no AVX2/FMA")
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not compiler:
        raise RuntimeError("no C compiler (set CC or install gcc)")
    lib = ctypes.CDLL(str(_build(compiler)))
    if lib.cb_abi_version() != ABI_VERSION:
        raise RuntimeError("stale kernel library")
    i, p, f = ctypes.c_int, ctypes.c_void_p, ctypes.c_float
    lib.cb_lstm_attend.argtypes = [i] * 6 + [p] * 9 + [i]
    lib.cb_lstm_backward.argtypes = [i] * 6 + [p] * 13 + [i]
    lib.cb_prepare.argtypes = [i] * 7 + [p] + [ctypes.c_long] * 4 + [p] * 3
    lib.cb_adam_step.argtypes = [i] + [p] * 6 + [f] * 6
    lib.cb_prepare.restype = lib.cb_adam_step.restype = None
    return lib


def _library():
    lib = _state.get("lib")
    if lib is not None or "why" in _state:
        return lib
    with _lock:
        if "lib" not in _state and "why" not in _state:
            try:
                _state["lib"] = _load()
            except Exception as exc:  # any failure means: use torch.nn.LSTM
                _state["why"] = str(exc)
                log.info("fused LSTM kernels not used (%s); running torch.nn.LSTM", exc)
        return _state.get("lib")


def available() -> bool:
    return _library() is not None


def unavailable_reason() -> str | None:
    _library()
    return _state.get("why")


def fits(*tensors: torch.Tensor | None) -> bool:
    """Whether these tensors are ones the native code reads: CPU, float32, contiguous (None passes)."""
    return all(t is None or (t.device.type == "cpu" and t.dtype == torch.float32 and t.is_contiguous())
               for t in tensors)


def _ptr(t: torch.Tensor | None):
    return None if t is None else ctypes.c_void_p(t.data_ptr())


_local = threading.local()


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
    Wk = W.new_empty(D, G, K)
    sn, sb, st, si = x.stride()
    _library().cb_prepare(T, n, 2 if bidirectional else 1, K, hidden, I, B, _ptr(x), sn, sb, st, si, _ptr(W), _ptr(buf),
                          _ptr(Wk))
    return Wk


def adam_step(params, grads, exp_avgs, exp_avg_sqs, steps, lr: float, betas, eps: float, weight_decay: float,
              clip: float) -> None:
    """Clip the gradients' total norm to ``clip`` (0: no clipping) and take one Adam step, in place, over
    all the given tensors (lists of equal length; ``steps``: each tensor's step count, already counted)."""
    n = len(params)
    arrays = [(ctypes.c_void_p * n)(*(t.data_ptr() for t in ts)) for ts in (params, grads, exp_avgs, exp_avg_sqs)]
    _library().cb_adam_step(n, *arrays, (ctypes.c_long * n)(*(t.numel() for t in params)), (ctypes.c_int * n)(*steps),
                            lr, betas[0], betas[1], eps, weight_decay, clip)


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
    _check(_library().cb_lstm_attend(T1 - 1, n, D, K, hidden, B, _ptr(buf), _ptr(Wk), _ptr(acts), _ptr(vs),
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
    _check(_library().cb_lstm_backward(T, n, D, buf.shape[2], hidden, B, _ptr(buf), _ptr(acts), _ptr(vs), _ptr(W),
                                       _ptr(dW), _ptr(dx_steps), _ptr(fixed), _ptr(weights), _ptr(g), _ptr(S),
                                       _ptr(g_weights), _ptr(context), _ptr(d_context), _threads()))
    return d_context


def _check(status: int) -> None:
    if status:
        raise MemoryError("the fused LSTM kernel could not allocate its scratch memory")
