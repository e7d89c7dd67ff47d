"""The native library: every C file of ``native/`` built into one shared library and loaded through ctypes.

The one module that builds and loads native code. Its users call ``function(name)``: the LSTM
kernels (``native_lstm``, for ``batched_lstm``).

Nothing is compiled at install time, so chrombench stays a pure-Python package. The first time a
native function is asked for, the sources are compiled with the system's C compiler (``$CC``, else
``cc``; about a second) into ``$CHROMBENCH_HOME/native/`` under a name that hashes the sources,
compiler and flags, and later processes load that file. Where the library cannot be used (no
compiler, no AVX2/FMA, not Linux or macOS on x86-64, ``CHROMBENCH_NATIVE=0``) ``available()`` is
False, the reason is logged once, and each user runs its torch specification instead.

A ctypes call through a signature that does not match the C definition corrupts memory without a
word, so the signatures live in one table, ``SIGNATURES``, which is checked against the C sources'
definitions before the library is used; ``ABI_VERSION`` is compiled into the library (``-D``) and
checked when it loads. Either mismatch raises ``NativeABIError``: a bug to fix, never a silent
fallback.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

log = logging.getLogger("chrombench.native")

SOURCES = tuple(sorted((Path(__file__).with_name("native")).glob("*.c")))
HEADERS = tuple(sorted((Path(__file__).with_name("native")).glob("*.h")))  # included by SOURCES: part of the build's hash
ABI_VERSION = 13  # bump with any change to an entry point's arguments or meaning
FLAGS = ("-O3", "-mavx2", "-mfma", "-fPIC", "-shared", "-pthread", "-fno-math-errno", f"-DCB_ABI_VERSION={ABI_VERSION}")

_INT, _LONG, _FLOAT, _PTR = ctypes.c_int, ctypes.c_long, ctypes.c_float, ctypes.c_void_p

# entry point -> (return type, ((argument, type), ...)); every pointer is passed as a void pointer
SIGNATURES: dict[str, tuple[type | None, tuple[tuple[str, type], ...]]] = {
    "cb_abi_version": (_INT, ()),
    "cb_lstm_isa": (_INT, (("bits", _INT),)),
    "cb_prepare": (None, (("T", _INT), ("n", _INT), ("dirs", _INT), ("K", _INT), ("H", _INT), ("I", _INT),
                          ("B", _INT), ("x", _PTR), ("sn", _LONG), ("sb", _LONG), ("st", _LONG), ("si", _LONG),
                          ("W", _PTR), ("buf", _PTR), ("Wk", _PTR))),
    "cb_lstm_attend": (_INT, (("T", _INT), ("n", _INT), ("D", _INT), ("K", _INT), ("H", _INT), ("B", _INT),
                              ("buf", _PTR), ("Wk", _PTR), ("acts", _PTR), ("vs", _PTR), ("ctx", _PTR),
                              ("fixed", _PTR), ("scores", _PTR), ("weights", _PTR), ("rep", _PTR),
                              ("threads", _INT))),
    "cb_lstm_backward": (_INT, (("T", _INT), ("n", _INT), ("D", _INT), ("K", _INT), ("H", _INT), ("B", _INT),
                                ("buf", _PTR), ("acts", _PTR), ("vs", _PTR), ("W", _PTR), ("dW", _PTR),
                                ("dx", _PTR), ("fixed", _PTR), ("weights", _PTR), ("g", _PTR), ("S", _PTR),
                                ("gw", _PTR), ("ctx", _PTR), ("dctx", _PTR), ("threads", _INT))),
}


class NativeABIError(RuntimeError):
    """The Python side and the C library disagree on an entry point or the ABI version."""


_lock = threading.Lock()
_state: dict = {}  # "lib" once loaded, "why" once refused


def available() -> bool:
    return _library() is not None


def unavailable_reason() -> str | None:
    _library()
    return _state.get("why")


def isa() -> str | None:
    """The instruction set the loaded kernels run (what result records carry in ``compute.isa``):
    ``native_lstm``'s run-time choice, AVX-512 or AVX2; ``None`` when the library is not used."""
    if not available():
        return None
    from . import native_lstm  # the dispatcher lives beside the kernels' entry points; imported late to avoid a cycle

    return native_lstm.isa()


def function(name: str):
    """The native entry point ``name``, its argument and return types set from ``SIGNATURES``."""
    lib = _library()
    if lib is None:
        raise RuntimeError(f"the native library is not available: {_state.get('why')}")
    return getattr(lib, name)


def fits(*tensors) -> bool:
    """Whether these tensors are ones the native code reads: CPU, float32, contiguous (None passes)."""
    import torch

    return all(t is None or (t.device.type == "cpu" and t.dtype == torch.float32 and t.is_contiguous())
               for t in tensors)


def build_dir() -> Path:
    from chrombench.home import home

    return home() / "native"


# -- the C definitions against the table ---------------------------------------------------------------

_C_TYPES = {"int": _INT, "long": _LONG, "float": _FLOAT, "void": None}
_DEFINITION = re.compile(r"^(int|void)\s+(cb_\w+)\s*\(([^)]*)\)\s*\{", re.MULTILINE)


def c_signatures(source: str) -> dict[str, tuple[type | None, tuple[tuple[str, type], ...]]]:
    """The exported ``cb_*`` functions defined in C source text, in ``SIGNATURES``' form."""
    out = {}
    for ret, name, params in _DEFINITION.findall(source):
        args = []
        for param in (p.strip() for p in params.split(",")):
            if param in ("", "void"):
                continue
            words = re.findall(r"\w+", param)
            kind = _PTR if "*" in param else _C_TYPES.get(next(w for w in words if w not in ("const", "unsigned")))
            args.append((words[-1], kind))
        out[name] = (_C_TYPES[ret], tuple(args))
    return out


def check_signatures(sources: dict[str, str]) -> None:
    """Raise ``NativeABIError`` naming each entry point whose C definition differs from ``SIGNATURES``."""
    defined: dict = {}
    for text in sources.values():
        defined.update(c_signatures(text))
    problems = [f"{name}: defined in C but not in SIGNATURES" for name in defined.keys() - SIGNATURES.keys()]
    problems += [f"{name}: in SIGNATURES but defined in no C file" for name in SIGNATURES.keys() - defined.keys()]
    for name in SIGNATURES.keys() & defined.keys():
        if defined[name] != SIGNATURES[name]:
            problems.append(f"{name}: C takes {_show(defined[name])}, SIGNATURES says {_show(SIGNATURES[name])}")
    if problems:
        raise NativeABIError("native entry points disagree with native_library.SIGNATURES: " + "; ".join(sorted(problems)))


def _show(signature) -> str:
    ret, args = signature
    names = {_INT: "int", _LONG: "long", _FLOAT: "float", _PTR: "pointer", None: "void"}
    return f"({', '.join(f'{names[t]} {a}' for a, t in args)}) -> {names[ret]}"


# -- build and load ---------------------------------------------------------------------------------------

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


def _build(compiler: str, sources: dict[str, bytes]) -> Path:
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    headers = b"\0".join(path.read_bytes() for path in HEADERS)
    digest = hashlib.sha256(b"\0".join(sources.values()) + headers + "\0".join(FLAGS).encode() + version.encode())
    target = build_dir() / f"chrombench_native-{digest.hexdigest()[:16]}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # compile beside the target and rename: a concurrent process sees no file or a whole one
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=".chrombench_native-", suffix=".so")
    os.close(fd)
    try:
        done = subprocess.run([compiler, *FLAGS, *map(str, SOURCES), "-o", partial, "-lm"],
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"{compiler} failed on {', '.join(p.name for p in SOURCES)}: {done.stderr.strip()[:500]}")
        os.chmod(partial, 0o755)
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return target


def _load():
    if os.environ.get("CHROMBENCH_NATIVE", "1").strip().lower() in ("0", "no", "false", "off"):
        raise RuntimeError("CHROMBENCH_NATIVE=0")
    sources = {path.name: path.read_bytes() for path in SOURCES}
    check_signatures({name: text.decode() for name, text in sources.items()})
    if not _cpu_has_avx2_fma():
        raise RuntimeError("the CPU has no AVX2/FMA")
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not compiler:
        raise RuntimeError("no C compiler (set CC or install gcc)")
    path = _build(compiler, sources)
    lib = ctypes.CDLL(str(path))
    for name, (ret, args) in SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = ret, [kind for _, kind in args]
    if lib.cb_abi_version() != ABI_VERSION:
        raise NativeABIError(f"{path} has ABI version {lib.cb_abi_version()}; this chrombench needs {ABI_VERSION}: "
                             f"remove {path} so that it is rebuilt")
    return lib


def _library():
    lib = _state.get("lib")
    if lib is not None or "why" in _state:
        return lib
    with _lock:
        if "lib" not in _state and "why" not in _state:
            try:
                _state["lib"] = _load()
            except NativeABIError:
                raise
            except Exception as exc:  # any other failure means: run the torch specification
                _state["why"] = str(exc)
                log.info("native library not used (%s); running the torch specification", exc)
        return _state.get("lib")
