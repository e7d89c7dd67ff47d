"""Import state dicts of the reference AttentiveChrome code (QData/AttentiveChrome) as chrombench models.

The published per-cell-type weights (Kipoi model zoo, Zenodo record 2616712,
``<EID>_attchrome_avgAUC_model.pt``) are ``state_dict()`` files of the reference ``att_chrome``
module: ``rnn_hms.<j>.rnn.*``, ``rnn_hms.<j>.bin_attention.bin_context_vector``,
``hm_level_rnn_1.rnn.*``, ``hm_level_rnn_1.bin_attention.bin_context_vector``, ``fdiff1_1.*``.

Safety: files are read with ``torch.load(weights_only=True)``, which refuses anything that would
run unpickling code, and must hold a flat mapping of names to tensors. The whole file is checked
against the architecture before anything is written, and every mismatch is reported at once.
The reference feeds raw counts, so imported models get ``input_transform="raw"``.
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

from ..errors import ModelFormatError, UnknownNameError
from ..registry import suggest
from .registry import ABLATIONS, get_model_class

# Architectures whose parameters have reference names: AttentiveChrome and its ablations (only
# "attentivechrome" has published weights; the others round-trip to_reference_state_dict()).
ARCHITECTURES = ABLATIONS
SOURCE = "QData/AttentiveChrome reference state dict"


def unpickling_refusal(exc: Exception) -> str:
    """What a file refused by ``torch.load(weights_only=True)`` wanted to import, in a few words.

    torch's own message ends by suggesting ``weights_only=False``, the one thing never to do with a
    file of unknown origin, so it is not passed on."""
    found = re.search(r"GLOBAL ([\w.]+)", str(exc))  # "Unsupported global: GLOBAL x.y" / "unsupported GLOBAL x.y whose"
    return f"it refers to {found.group(1)}" if found else "it holds objects other than tensors"


def read_state_dict(path: str | os.PathLike) -> dict:
    """A ``.pt`` file holding a plain ``{name: tensor}`` mapping, or a ModelFormatError saying why not."""
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise ModelFormatError(f"{path}: no such file")
    with open(path, "rb") as fh:
        head = fh.read(2)
    # torch.save writes a zip archive (or, before torch 1.6, a pickle stream starting with 0x80)
    if not (zipfile.is_zipfile(path) or head[:1] == b"\x80"):
        raise ModelFormatError(f"{path} is not a torch .pt file (neither a torch zip archive nor a pickle stream)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ModelFormatError(
            f"{path} is refused: loading it would need unpickling code ({unpickling_refusal(exc)}). chrombench "
            "imports plain state dicts of tensors only, as written by torch.save(model.state_dict(), FILE)") from exc
    except Exception as exc:  # truncated archive, zip error ...
        raise ModelFormatError(f"{path} is not a readable torch .pt file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, Mapping):
        raise ModelFormatError(f"{path} holds a {type(obj).__name__}, not a state dict (a mapping from parameter "
                               "names to tensors)")
    problems = []
    for key, value in obj.items():
        if not isinstance(key, str):
            problems.append(f"key {key!r} is not a string")
        elif isinstance(value, Mapping):
            problems.append(f"{key!r} holds a nested mapping (a checkpoint wrapping the state dict? save "
                            "model.state_dict() itself)")
        elif not isinstance(value, torch.Tensor):
            problems.append(f"{key!r} holds a {type(value).__name__}, not a tensor")
        elif not (value.is_floating_point() and bool(torch.isfinite(value).all())):
            problems.append(f"{key!r} is not a finite floating-point tensor (dtype {value.dtype})")
    if problems:
        raise ModelFormatError(f"{path} is not a plain state dict of tensors:\n  - " + "\n  - ".join(problems))
    return dict(obj)


def import_reference_weights(path: str | os.PathLike, arch: str = "attentivechrome",
                             out: str | os.PathLike | None = None, **params):
    """Build a chrombench ``arch`` model from a reference state dict; save it to ``out`` if given.

    ``params`` are further ``__init__`` arguments (e.g. ``device``); ``input_transform`` is "raw"
    because the reference was trained on raw counts. Raises ModelFormatError naming every missing
    key, unexpected key and wrong shape; nothing is written unless the whole file fits.
    """
    if arch not in ARCHITECTURES:
        raise UnknownNameError(suggest(arch, list(ARCHITECTURES), "architecture"))
    state = read_state_dict(path)
    model = get_model_class(arch)(**{"input_transform": "raw", **params})
    problems = reference_mismatches(state, model.reference_shapes())
    if problems:
        hint = ""
        if state and all(k.startswith("module.") for k in state):
            hint = "\n(every key starts with 'module.': saved from nn.DataParallel; strip that prefix first)"
        raise ModelFormatError(f"{path} does not fit {arch} ({len(problems)} problem{'s' * (len(problems) > 1)}):"
                               "\n  - " + "\n  - ".join(problems) + hint)
    model.load_reference_state_dict(state)
    model.history_ = {"imported": {"file": Path(path).name, "sha256": _sha256(path), "source": SOURCE}}
    if out is not None:
        model.save(out)
    return model


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def reference_mismatches(state: dict, expected: dict[str, tuple[int, ...]]) -> list[str]:
    """Every way ``state`` differs from ``expected`` (missing keys, unexpected keys, wrong shapes)."""
    problems = [f"missing key {k!r} (expected shape {list(s)})" for k, s in expected.items() if k not in state]
    problems += [f"unexpected key {k!r}" for k in state if k not in expected]
    for k, shape in expected.items():
        if k in state and tuple(state[k].shape) != shape:
            problems.append(f"{k!r} has shape {list(state[k].shape)}, expected {list(shape)}")
    return problems
