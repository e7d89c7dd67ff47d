"""Names and lazy targets resolve, or fail with a suggestion."""

import pytest

from chrombench.errors import UnknownNameError
from chrombench.models.catalog import describe, read_declarations
from chrombench.models.registry import _ZOO, MODELS, get_model_class, zoo_names
from chrombench.registry import Registry, load_target


def test_registry_did_you_mean():
    reg = Registry("thing")
    reg.register("attentivechrome", "collections:OrderedDict")
    with pytest.raises(UnknownNameError, match="did you mean 'attentivechrome'"):
        reg.get("attentivechrom")
    assert reg.get("attentivechrome").__name__ == "OrderedDict"  # lazily imported


def test_each_zoo_line_names_a_model_that_calls_itself_so():
    """A registry line and its class agree on the name (saved models record it, and load through it),
    and a near miss gets a suggestion."""
    for name in zoo_names():
        cls = get_model_class(name)
        assert cls.name == name, f"the registry's {name!r} is {cls.__module__}:{cls.__qualname__}, named {cls.name!r}"
    with pytest.raises(UnknownNameError, match="did you mean 'xgboost'"):
        get_model_class("xgbost")


def test_every_zoo_model_in_baselines_is_registered():
    """A model file without its registry line would never run: every class under baselines/ that
    declares a name is in the zoo, under that name."""
    import importlib
    import inspect
    import pkgutil

    import chrombench.baselines as zoo
    from chrombench.models.contract import ChromModel

    registered = {name: get_model_class(name) for name in zoo_names()}
    for info in pkgutil.iter_modules(zoo.__path__):
        module = importlib.import_module(f"{zoo.__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, ChromModel) and cls.__module__ == module.__name__ and cls.name:
                assert registered.get(cls.name) is cls, (
                    f"{module.__name__}:{cls.__qualname__} (name {cls.name!r}) has no line in "
                    f"chrombench/models/registry.py _ZOO: add {cls.name!r}: \"{module.__name__}:{cls.__qualname__}\"")


def test_file_targets(tmp_path):
    f = tmp_path / "mymodel.py"
    f.write_text("class Mine:\n    answer = 42\n")
    assert load_target(f"{f}:Mine").answer == 42
    with pytest.raises(UnknownNameError, match="has no attribute 'Other'"):
        load_target(f"{f}:Other")
    with pytest.raises(UnknownNameError, match="no such file"):
        load_target(f"{tmp_path}/missing.py:X")


@pytest.mark.parametrize("name", zoo_names())
def test_the_listing_reads_what_the_model_declares(name):
    """`models list` reads each zoo model's attributes from its file (no import, no build): they must
    be what the imported class says, and its declared parameter count what the built model has."""
    cls = get_model_class(name)
    assert "parameter_count" in dir(cls), (
        f"{cls.__name__} declares no parameter_count; add `parameter_count: ClassVar[int | None] = "
        f"{int(cls().n_parameters()) or None}` to it (None: the data decides)")
    built = int(cls().n_parameters()) or None
    assert cls.parameter_count == built, f"{cls.__name__}.parameter_count is {cls.parameter_count}, the model has {built}"
    read = read_declarations(MODELS.target(name) if isinstance(MODELS.target(name), str) else _ZOO[name])
    assert read is not None, f"{name}: its listed attributes are not literals in its file"
    assert read == {"name": cls.name, "family": cls.family, "description": cls.description,
                    "citation": cls.citation, "parameter_count": cls.parameter_count}


def test_the_listing_counts_a_model_that_declares_no_parameter_count(tmp_path):
    f = tmp_path / "undeclared.py"
    f.write_text("from chrombench.models.contract import ChromModel\n\n"
                 "class Undeclared(ChromModel):\n    '''Counts its own.'''\n    family = 'toy'\n"
                 "    fit = predict_proba = _save_state = _load_state = print\n\n"
                 "    def n_parameters(self):\n        return 7\n")
    target = f"{f}:Undeclared"
    assert read_declarations(target) is None  # nothing to read: the listing imports and builds it
    MODELS.register("undeclared-toy", target, origin="plugin:toy")
    try:
        row = describe("undeclared-toy")
    finally:
        del MODELS._entries["undeclared-toy"], MODELS._meta["undeclared-toy"]
    assert row["parameters"] == 7 and row["description"] == "Counts its own. [plugin:toy]" and row["family"] == "toy"


def test_listing_the_zoo_imports_no_model_code():
    """What keeps `chrombench models list` under a second: torch, scikit-learn and xgboost stay unloaded."""
    import subprocess
    import sys

    code = ("import sys; from click.testing import CliRunner; from chrombench.cli import main; "
            "out = CliRunner().invoke(main, ['models', 'list']).output; assert 'chromoformer' in out, out; "
            "print(sorted(m for m in ('torch', 'sklearn', 'xgboost', 'scipy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


GOOD_MODEL = '''
from chrombench.models.contract import ChromModel, TuningBudget

class Declared(ChromModel):
    name = "declared-toy"
    {line}

    def __init__(self, l2=1.0, seed=0):
        self.l2, self.seed = l2, seed

    def fit(self, train, valid=None, on_epoch=None):
        return self

    def predict_proba(self, X):
        raise NotImplementedError

    def _save_state(self, directory):
        return {}

    def _load_state(self, directory, config):
        pass
'''


@pytest.mark.parametrize("line, field, words", [
    ("explains = ('attention',)", "explains", "no attention()"),
    ("explains = ('shap',)", "explains", "'shap'; it can hold attention, gradients, importance, latent"),
    ("seed_param = 'random_state'", "seed_param", "'random_state', which __init__ does not take"),
    ("tuning = {'quick': 5}", "tuning", "'quick' must be a TuningBudget"),
    ("param_ranges = {'l2': '0 to 1'}", "param_ranges", "'0 to 1' is not an interval"),
    ("iterative = 'yes'", "iterative", "must be True or False"),
    ("fixed_input = (100,)", "fixed_input", "two positive integers"),
    ("has_attention = False; explains = ('attention',); attention = lambda self, X: None", "explains",
     "'attention' but has_attention is False"),
])
def test_a_wrong_declaration_is_an_error_naming_the_model_and_the_field(tmp_path, line, field, words):
    from chrombench.errors import ModelDeclarationError

    f = tmp_path / "declared.py"
    f.write_text(GOOD_MODEL.replace("{line}", line))
    with pytest.raises(ModelDeclarationError, match=rf"declared\.py:Declared.*: {field} .*{words}"):
        get_model_class(f"{f}:Declared")


def test_declarations_that_fit_pass_and_undeclared_ones_are_free(tmp_path):
    f = tmp_path / "declared.py"
    f.write_text(GOOD_MODEL.replace("{line}", "tuning = {'quick': TuningBudget(2)}; seed_param = 'seed'") +
                 "\n\nclass Bare(Declared):\n    pass\n")
    assert get_model_class(f"{f}:Declared").name == "declared-toy"
    assert get_model_class(f"{f}:Bare").__name__ == "Bare"  # a subclass that declares nothing of its own passes
    nofit = tmp_path / "nofit.py"  # another file: a file target is imported once per process
    nofit.write_text(GOOD_MODEL.replace("{line}", "").replace("    def fit(self, train, valid=None, on_epoch=None):\n"
                                                               "        return self\n", ""))
    from chrombench.errors import ModelDeclarationError

    with pytest.raises(ModelDeclarationError, match=r"defines no fit\(\)"):
        get_model_class(f"{nofit}:Declared")


def test_a_class_that_is_no_chrommodel_is_refused_when_resolved_naming_it_and_what_it_lacks(tmp_path):
    """A plain class with fit and predict_proba would pass tuning and fail only when the engine saves
    its first fit; resolving it (a file target, a plugin, a registered name) refuses it at once."""
    from chrombench.errors import ModelDeclarationError

    f = tmp_path / "plain.py"
    f.write_text("class Plain:\n    def fit(self, train, valid=None, on_epoch=None):\n        return self\n\n"
                 "    def predict_proba(self, X):\n        return X\n\n\ndef make():\n    return Plain()\n")
    with pytest.raises(ModelDeclarationError) as caught:
        get_model_class(f"{f}:Plain")
    message = str(caught.value)
    assert f"model {f}:Plain (" in message and "does not subclass chrombench.models.contract.ChromModel" in message
    assert "it lacks save(), n_parameters(), training_report(), get_params()" in message
    assert "class Plain(ChromModel)" in message and "_save_state()" in message and "_load_state()" in message
    MODELS.register("plain-toy", f"{f}:Plain", origin="plugin:toy")
    try:
        with pytest.raises(ModelDeclarationError, match=r"model plain-toy \(.*:Plain\) does not subclass"):
            get_model_class("plain-toy")
    finally:
        del MODELS._entries["plain-toy"], MODELS._meta["plain-toy"]
    with pytest.raises(ModelDeclarationError, match=r":make is function .*not a chrombench model class"):
        get_model_class(f"{f}:make")


def test_a_model_without_its_persistence_is_refused_naming_the_class_and_the_methods(tmp_path):
    """A model missing required methods gets one error that names it and every method it lacks, when it
    is resolved: not a bare NotImplementedError once a fit is over and the model is saved."""
    from chrombench.errors import ModelDeclarationError

    f = tmp_path / "unsaved.py"
    f.write_text(GOOD_MODEL.replace("{line}", "").split("    def _save_state")[0])
    with pytest.raises(ModelDeclarationError) as caught:
        get_model_class(f"{f}:Declared")
    message = str(caught.value)
    assert f"model {f}:Declared (" in message and ":Declared)" in message
    assert "defines no _save_state() or _load_state(), which every model must" in message
    assert "write the learned state into a folder" in message and "read that state back" in message
    assert "fit()" not in message and "predict_proba()" not in message  # only what it lacks

    from chrombench.models.contract import ChromModel

    class Bare(ChromModel):  # built directly, not resolved: Python's own refusal names both too
        def fit(self, train, valid=None, on_epoch=None):
            return self

        def predict_proba(self, X):
            return X

    with pytest.raises(TypeError, match=r"Bare.*_load_state.*_save_state"):
        Bare()


def test_what_a_model_explains_is_read_from_its_declaration_or_once_from_its_methods():
    """The explain methods follow ``explains``; a class that declares nothing is read from the methods
    it has, its has_attention honoured, by the same function."""
    from chrombench.explain.methods import available_methods
    from chrombench.models.contract import explains_of

    class Attends:
        def attention(self, X):
            return None

        def prepare_inputs(self, X):
            return X

        def logits_from_inputs(self, t):
            return t

    class Ablated(Attends):
        has_attention = False

    class Declares(Attends):
        explains = ("gradients",)

    assert explains_of(Attends) == ("attention", "gradients")
    assert explains_of(Ablated) == ("gradients",)
    assert explains_of(Declares) == ("gradients",)
    assert available_methods(Attends()) == ["attention", "saliency", "integrated-gradients"]
    assert available_methods(Declares()) == ["saliency", "integrated-gradients"]
