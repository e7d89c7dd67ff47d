"""Names and lazy targets resolve, or fail with a suggestion."""

import pytest

from chrombench.errors import UnknownNameError
from chrombench.models.registry import MODELS, get_model_class
from chrombench.registry import Registry, load_target


def test_registry_did_you_mean():
    reg = Registry("thing")
    reg.register("attentivechrome", "collections:OrderedDict")
    with pytest.raises(UnknownNameError, match="did you mean 'attentivechrome'"):
        reg.get("attentivechrom")
    assert reg.get("attentivechrome").__name__ == "OrderedDict"  # lazily imported


def test_zoo_names_are_registered():
    assert set(MODELS.names()) == {
        "attentivechrome", "attentivechrome-no-alpha", "attentivechrome-no-beta", "attentivechrome-unidirectional",
        "lstm", "deepchrome", "svm", "random-forest", "xgboost", "logistic-regression", "shallowchrome", "hm-crnn",
        "chromoformer", "transferchrome", "patternchrome", "deepchrome2"}
    with pytest.raises(UnknownNameError, match="did you mean 'xgboost'"):
        get_model_class("xgbost")


def test_file_targets(tmp_path):
    f = tmp_path / "mymodel.py"
    f.write_text("class Mine:\n    answer = 42\n")
    assert load_target(f"{f}:Mine").answer == 42
    with pytest.raises(UnknownNameError, match="has no attribute 'Other'"):
        load_target(f"{f}:Other")
    with pytest.raises(UnknownNameError, match="no such file"):
        load_target(f"{tmp_path}/missing.py:X")
