"""Loading saved models: JSON config + tensors/arrays, never arbitrary unpickling."""

from __future__ import annotations

import json
from pathlib import Path

from .. import MARKS, N_BINS, __version__
from ..errors import ModelFormatError
from .contract import MODEL_FORMAT
from .registry import get_model_class


def read_config(path: str | Path) -> dict:
    path = Path(path)
    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        raise ModelFormatError(f"{path} is not a saved chrombench model (no config.json)")
    try:
        config = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{cfg_path}: invalid JSON ({exc})") from exc
    fmt = config.get("chrombench_model_format")
    if fmt != MODEL_FORMAT:
        raise ModelFormatError(
            f"{path} was saved in model format {fmt!r} by chrombench {config.get('chrombench_version')}; "
            f"this chrombench {__version__} reads format {MODEL_FORMAT}")
    inp = config.get("input", {})
    if inp.get("bins") != N_BINS or list(inp.get("marks", [])) != list(MARKS):
        raise ModelFormatError(
            f"{path} was trained on inputs of {inp.get('bins')} bins x marks {inp.get('marks')}; "
            f"chrombench tasks have {N_BINS} bins x {list(MARKS)}")
    return config


def load_model(path: str | Path):
    path = Path(path)
    config = read_config(path)
    cls = get_model_class(config["model"])
    model = cls(**config.get("params", {}))
    model._load_state(path, config)
    return model
