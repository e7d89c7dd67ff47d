"""The model zoo by name. Targets are lazy, so importing chrombench never imports torch."""

from __future__ import annotations

from typing import Any

from ..registry import Registry, load_target

MODELS: Registry = Registry("model")

_ZOO = {
    "attentivechrome": "chrombench.baselines.attentivechrome:AttentiveChrome",
    "attentivechrome-no-alpha": "chrombench.baselines.attentivechrome:AttentiveChromeNoAlpha",
    "attentivechrome-no-beta": "chrombench.baselines.attentivechrome:AttentiveChromeNoBeta",
    "attentivechrome-unidirectional": "chrombench.baselines.attentivechrome:AttentiveChromeUnidirectional",
    "lstm": "chrombench.baselines.attentivechrome:PlainLSTM",
    "deepchrome": "chrombench.baselines.deepchrome:DeepChrome",
    "svm": "chrombench.baselines.classical:SVMModel",
    "random-forest": "chrombench.baselines.classical:RandomForestModel",
    "xgboost": "chrombench.baselines.classical:XGBoostModel",
    "logistic-regression": "chrombench.baselines.classical:LogisticRegressionModel",
    "shallowchrome": "chrombench.baselines.shallowchrome:ShallowChrome",
    "hm-crnn": "chrombench.baselines.hmcrnn:HMCRNN",
    "chromoformer": "chrombench.baselines.chromoformer:Chromoformer",
    "transferchrome": "chrombench.baselines.transferchrome:TransferChrome",
    "patternchrome": "chrombench.baselines.patternchrome:PatternChrome",
    "deepchrome2": "chrombench.baselines.deepchrome2:DeepChrome2",
}
for _name, _target in _ZOO.items():
    MODELS.register(_name, _target, origin="zoo")

ENTRY_POINT_GROUP = "chrombench.models"
_plugins_loaded = False
PLUGIN_PROBLEMS: dict[str, str] = {}  # entry point -> why it was not registered (shown by `models list`)


def load_plugins() -> None:
    """Register the models that installed distributions declare in the ``chrombench.models`` entry-point
    group (``name = "pkg.module:Class"`` in their pyproject's ``[project.entry-points."chrombench.models"]``).

    Lazy like the zoo: only the target string is registered, nothing is imported until the model is
    used. A plugin cannot take a zoo name (or an alias); a clash is reported, not registered."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    from ..safepath import ID_RE

    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = getattr(getattr(ep, "dist", None), "name", None) or "?"
        if ep.name in MODELS or ep.name in ALIASES:
            PLUGIN_PROBLEMS[f"{ep.name} ({dist})"] = f"the name {ep.name!r} is taken by the zoo; not registered"
        elif not ID_RE.match(ep.name) or ".." in ep.name or ":" not in ep.value:
            PLUGIN_PROBLEMS[f"{ep.name} ({dist})"] = f"needs a plain name and a 'module:Class' target, got {ep.value!r}"
        else:
            MODELS.register(ep.name, ep.value, origin=f"plugin:{dist}")

# Short names people type; results are always recorded under the full name.
ALIASES = {"ac": "attentivechrome", "dc": "deepchrome", "lr": "logistic-regression", "rf": "random-forest",
           "xgb": "xgboost"}


def canonical(name: str) -> str:
    """The zoo name behind an alias (``rf`` -> ``random-forest``); anything else unchanged."""
    return ALIASES.get(name, name)


def zoo_names() -> list[str]:
    """The zoo's own models (not plugins): what a run over "every model" means."""
    return [n for n in MODELS.names() if MODELS.meta(n).get("origin") == "zoo"]


ABLATIONS = ("attentivechrome", "attentivechrome-no-alpha", "attentivechrome-no-beta",
             "attentivechrome-unidirectional", "lstm")


def get_model_class(name_or_target: str) -> type:
    """A zoo name (``attentivechrome``) or a lazy target (``my_pkg.mod:Cls``, ``path/m.py:Cls``): a
    ``ChromModel`` subclass, its declarations checked (``contract.check_declarations``) the first time
    it is resolved; anything else is refused there, naming it and what it lacks."""
    name_or_target = canonical(name_or_target)
    if name_or_target not in MODELS and ":" not in name_or_target:
        load_plugins()
    if name_or_target in MODELS or ":" not in name_or_target:
        cls = MODELS.get(name_or_target)
    else:
        cls = load_target(name_or_target)
    if not (isinstance(cls, type) and cls in _CHECKED):
        from .contract import check_declarations

        check_declarations(cls, name_or_target)
        _CHECKED.add(cls)
    return cls


_CHECKED: set[type] = set()


def make_model(name_or_target: str, **params: Any):
    return get_model_class(name_or_target)(**params)
