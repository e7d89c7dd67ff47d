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
}
for _name, _target in _ZOO.items():
    MODELS.register(_name, _target)

# Short names people type; results are always recorded under the full name.
ALIASES = {"ac": "attentivechrome", "dc": "deepchrome", "lr": "logistic-regression", "rf": "random-forest",
           "xgb": "xgboost"}


def canonical(name: str) -> str:
    """The zoo name behind an alias (``rf`` -> ``random-forest``); anything else unchanged."""
    return ALIASES.get(name, name)


ABLATIONS = ("attentivechrome", "attentivechrome-no-alpha", "attentivechrome-no-beta",
             "attentivechrome-unidirectional", "lstm")


def get_model_class(name_or_target: str) -> type:
    """A zoo name (``attentivechrome``) or a lazy target (``my_pkg.mod:Cls``, ``path/m.py:Cls``)."""
    name_or_target = canonical(name_or_target)
    if name_or_target in MODELS or ":" not in name_or_target:
        return MODELS.get(name_or_target)
    return load_target(name_or_target)


def make_model(name_or_target: str, **params: Any):
    return get_model_class(name_or_target)(**params)
