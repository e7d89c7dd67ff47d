"""Loading saved models: JSON config + tensors/arrays, never arbitrary unpickling."""

from __future__ import annotations

import json
from pathlib import Path

from .. import MARKS, N_BINS, __version__
from ..safepath import quote
from ..errors import ModelDeclarationError, ModelFormatError
from .contract import MODEL_FORMAT
from .registry import get_model_class


def state_file(directory: str | Path, config: dict, key: str, default: str) -> Path:
    """The file a config names under ``key`` (``default`` when absent): a plain file name inside the
    model folder, never a path that leads out of it."""
    directory = Path(directory)
    name = config.get(key, default)
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise ModelFormatError(f"{directory}/config.json: {key!r} must name a file inside the model folder, not "
                               f"{quote(name)} (outside the folder, or not a file name)")
    if (directory / name).is_symlink():
        raise ModelFormatError(f"{directory / name} is a symlink: a saved model's files lie inside its folder")
    return directory / name


def read_config(path: str | Path) -> dict:
    path = Path(path)
    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        raise ModelFormatError(f"{path} is not a saved chrombench model (no config.json)")
    try:
        config = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{cfg_path}: invalid JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise ModelFormatError(f"{cfg_path}: a saved model's config.json is a JSON object, not {type(config).__name__}")
    fmt = config.get("chrombench_model_format")
    if fmt != MODEL_FORMAT:
        raise ModelFormatError(
            f"{path} was saved in model format {fmt!r} by chrombench {config.get('chrombench_version')}; "
            f"this chrombench {__version__} reads format {MODEL_FORMAT}")
    inp = config.get("input", {})
    if not isinstance(inp, dict):
        raise ModelFormatError(f"{cfg_path}: 'input' must be an object, not {type(inp).__name__}")
    bins, marks = inp.get("bins", N_BINS), inp.get("marks", list(MARKS))
    if (not isinstance(bins, int) or isinstance(bins, bool) or bins < 1 or not isinstance(marks, list) or not marks
            or not all(isinstance(m, str) for m in marks)):
        raise ModelFormatError(f"{cfg_path}: 'input' needs bins (a positive integer) and marks (a list of names), "
                               f"got bins {bins!r}, marks {marks!r}")
    return config


def load_model(path: str | Path, *, trust_code: bool = False, device: str | None = None):
    """The model saved in ``path``. Zoo models load from their weights alone. A model whose class is
    third-party code (a ``module:Class`` or ``file.py:Class`` target, e.g. a submission) imports and
    runs that code, so it loads only with ``trust_code=True``. ``device`` overrides where a neural
    model computes (``None``: where it was saved from)."""
    from .registry import MODELS, load_plugins

    load_plugins()
    path = Path(path)
    config = read_config(path)
    target = config.get("model")
    saved_by = config.get("chrombench_version")
    if not isinstance(target, str) or not target:
        raise ModelFormatError(f"{path}/config.json names no model class")
    if target not in MODELS:
        if ":" not in target:
            raise ModelFormatError(f"{path} is a {target!r} model, which this chrombench {__version__} does not "
                                   f"have (saved by chrombench {saved_by})")
        if not trust_code:
            raise ModelFormatError(
                f"{path} is a model of third-party code ({target}); loading it imports and runs that code. "
                f"If you trust it, pass --trust-code (load_model(..., trust_code=True))")
    try:
        cls = get_model_class(target)  # refuses anything but a ChromModel subclass
    except ModelDeclarationError as exc:
        raise ModelFormatError(f"{path}/config.json names {target!r}: {exc}") from None
    params = config.get("params", {})
    if not isinstance(params, dict):
        raise ModelFormatError(f"{path}/config.json: 'params' must be an object of hyperparameters, not "
                               f"{type(params).__name__}")
    params = dict(params)
    accepted = set(cls._get_param_names())
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise ModelFormatError(
            f"{path} was saved by chrombench {saved_by} with parameters {', '.join(unknown)} that {cls.__name__} "
            f"of chrombench {__version__} does not take")
    if device is not None and "device" in accepted:
        params["device"] = device
    from ..errors import ChrombenchError
    from .contract import validate_params

    try:
        validate_params(cls, params, where=f"{path}/config.json")
    except ChrombenchError as exc:
        raise ModelFormatError(str(exc)) from exc
    model = cls(**params)
    inp = config.get("input", {})  # read_config checked it
    marks = tuple(inp.get("marks", MARKS))
    model.input_shape_, model.marks_ = (int(inp.get("bins", N_BINS)), len(marks)), marks  # what its weights fit
    try:
        model._load_state(path, config)
    except ModelFormatError as exc:
        if saved_by != __version__:
            raise ModelFormatError(f"{exc} (saved by chrombench {saved_by}; this is chrombench {__version__})") from exc
        raise
    return model
