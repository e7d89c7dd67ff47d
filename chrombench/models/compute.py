"""What a fit computed on: the ``compute`` block of a result record.

A number is reproducible within a tolerance, not bit for bit, once the arithmetic under it can change:
the fused C kernels or torch's operators, the instruction set the kernels run, the threads that split
the work, the torch release. A record therefore says which of these produced it, so that a rebuilt
cell that lands outside the tolerance can be told apart from one that ran another path.

``compute_report(path=..., ...)`` makes the block (a model's ``compute_report()`` returns one, as
``fit_report`` makes ``training_report()``'s); ``unreported()`` is what the engine records for a model
that does not say (scikit-learn, XGBoost, a third-party class).
"""

from __future__ import annotations

# path      which arithmetic ran the model's layers:
#   native  the fused C kernels (``baselines/native``) for every layer that has one
#   torch   torch's operators only (no fused kernel built, turned off, float64, a GPU, or a model without one)
#   mixed   some calls on each (a layer the kernels do not take, e.g. a hidden size not a multiple of 8)
#   unknown the model does not say
PATHS = ("native", "torch", "mixed", "unknown")


def torch_version() -> str | None:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency; a plugin environment might lack it
        return None
    return torch.__version__


def torch_cpu_capability() -> str | None:
    """The instruction set torch's own CPU kernels dispatch to (``AVX512``, ``AVX2``, ``DEFAULT``): its
    reductions round differently on each."""
    try:
        import torch

        return str(torch.backends.cpu.get_cpu_capability())
    except (ImportError, AttributeError):  # pragma: no cover - an old or absent torch
        return None


def compute_report(path: str, *, threads: int | None, isa: str | None = None, optimizer: str | None = None,
                   device: str | None = None) -> dict:
    """The block: ``path`` (one of ``PATHS``), ``isa`` (the instruction set the native kernels ran, e.g.
    ``avx2``; ``None`` when no native kernel ran), the ``torch`` version, ``threads`` (what the fit's
    compute was split over: the kernels' threads on the native path, torch's intra-op threads otherwise),
    ``optimizer`` (the implementation of the optimizer step, e.g. ``torch.optim.Adam(fused)``),
    ``device`` and ``torch_cpu`` (what torch's own CPU kernels dispatch to)."""
    if path not in PATHS:
        raise ValueError(f"unknown compute path {path!r}; one of {', '.join(PATHS)}")
    if threads is not None and int(threads) < 1:
        raise ValueError(f"threads must be at least 1, got {threads!r}")
    return {"path": path, "isa": isa if path in ("native", "mixed") else None, "torch": torch_version(),
            "threads": None if threads is None else int(threads), "optimizer": optimizer, "device": device,
            "torch_cpu": torch_cpu_capability()}


def unreported() -> dict:
    return compute_report("unknown", threads=None)


def describe(block) -> str:
    """One line for people: ``native avx2, 2 threads, torch 2.13.0`` (``not recorded`` for older records)."""
    if not isinstance(block, dict):
        return "not recorded"
    parts = [str(block.get("path", "unknown")) + (f" {block['isa']}" if block.get("isa") else "")]
    if block.get("threads"):
        parts.append(f"{block['threads']} thread{'s' if block['threads'] != 1 else ''}")
    if block.get("torch"):
        parts.append(f"torch {block['torch']}")
    if block.get("optimizer"):
        parts.append(block["optimizer"])
    return ", ".join(parts)
