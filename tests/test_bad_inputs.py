"""The bad-input corpus: crafted or broken inputs, each expected to end in a clear error (or a refusal
recorded in a report), never a traceback, and never a change outside the managed roots.

Table-driven: every case is (id, how to provoke it, what must be said). For each case the test
checks the exit code, that the message names the offending value or file, that it quotes at most a
few hundred characters of it, that no Python traceback reached the user, and that a sentinel tree
outside CHROMBENCH_HOME (and the registry of datasets inside it) is byte-for-byte unchanged.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from click.testing import CliRunner

from chrombench.cli import main
from conftest import write_records

MAX_MESSAGE = 700  # a clear error quotes at most ~200 characters of an offending value


@dataclass
class Case:
    id: str
    setup: Callable[[Path], list[str]]  # writes what it needs under the case folder, returns CLI args
    says: str  # a substring the output must contain
    code: int | tuple = (1, 2)  # exit code(s) allowed
    files_outside_unchanged: bool = True
    extra: Callable[[Path], None] | None = field(default=None)  # further checks after the run


# -- inputs --------------------------------------------------------------------------------------------------

def _gene_rows(gene: str, label: int, bins: int = 100, counts=(1, 2, 3, 4, 5)) -> list[str]:
    return [f"{gene},{b + 1},{','.join(map(str, counts))},{label}" for b in range(bins)]


def _good_split(n: int = 6, offset: int = 0, prefix: str = "g") -> str:
    rows = []
    for i in range(n):
        rows += _gene_rows(f"{prefix}{offset + i:04d}", i % 2)
    return "\n".join(rows) + "\n"


def toy_dataset(root: Path, *, train: str | bytes | None = None, gene_prefix: str = "g") -> Path:
    """A one-task dataset folder in the archive layout; ``train`` replaces the train split's text."""
    root.mkdir(parents=True, exist_ok=True)
    for k, split in enumerate(("train", "valid", "test")):
        text = _good_split(6, offset=100 * k, prefix=gene_prefix)
        if split == "train" and train is not None:
            text = train
        (root / f"{split}.csv").write_bytes(text if isinstance(text, bytes) else text.encode())
    return root


def importing(version="1", name="mytoy", train=None, extra_args=()):
    def setup(d: Path) -> list[str]:
        return ["data", "import", str(toy_dataset(d / "ds", train=train)), "--name", name, "--version", version,
                *extra_args]
    return setup


def _replace_line(text: str, index: int, line: str) -> str:
    lines = text.splitlines()
    lines[index] = line
    return "\n".join(lines) + "\n"


GOOD = _good_split()


def saved_model(config_change: Callable[[dict], None] | None = None, raw: str | None = None, neural: bool = False):
    """A real saved model (logistic regression, or a small DeepChrome), then its config.json changed;
    predict with it."""
    def setup(d: Path) -> list[str]:
        from chrombench.baselines.classical import LogisticRegressionModel
        from chrombench.baselines.deepchrome import DeepChrome
        from chrombench.data.arrays import Split

        rng = np.random.default_rng(0)
        X = rng.poisson(2, (40, 100, 5)).astype(np.int32)
        y = (X[:, 45:55, 3].sum(1) > 20).astype(np.int8)
        model_dir = d / "model"
        model = (DeepChrome(n_filters=4, fc1_units=8, fc2_units=4, epochs=1, device="cpu") if neural
                 else LogisticRegressionModel())
        model.fit(Split(np.array([f"g{i}" for i in range(40)]), X, y)).save(model_dir)
        cfg_path = model_dir / "config.json"
        if raw is not None:
            cfg_path.write_text(raw)
        else:
            cfg = json.loads(cfg_path.read_text())
            config_change(cfg)
            cfg_path.write_text(json.dumps(cfg))
        (d / "in.csv").write_text(GOOD)
        return ["predict", str(model_dir), str(d / "in.csv"), "-o", str(d / "preds.csv")]
    return setup


def bundle_of_records(mutate: Callable[[list[dict]], list[dict]] | None = None, name="victim"):
    """A run's output with records of model ``name``; bundle it into d/lb."""
    def setup(d: Path) -> list[str]:
        from conftest import synthetic_records

        recs = synthetic_records({name: {t: [0.8, 0.81, 0.82] for t in ("E003", "E112", "E123")}})
        if mutate:
            recs = mutate(recs)
        write_records(d / "run", recs, predictions=True)
        return ["leaderboard", "bundle", str(d / "run" / "results"), "--suite", "quick", "--out", str(d / "lb")]
    return setup


def _renamed(name: str):
    """Records resealed under another model name (a crafted submission)."""
    def mutate(recs):
        from chrombench import results

        out = []
        for r in recs:
            body = {k: v for k, v in r.items() if k != "digest"}
            out.append(results.seal({**body, "model": {**body["model"], "name": name}}))
        return out
    return mutate


def training(args: list[str]):
    def setup(d: Path) -> list[str]:
        return ["train", "-t", "E003", "--quick", "-o", str(d / "m"), *args]
    return setup


def running(args: list[str]):
    def setup(d: Path) -> list[str]:
        return ["run", "--output-dir", str(d / "out"), "--no-progress", "--workers", "1", *args]
    return setup


def cli(args: list[str]):
    return lambda d: list(args)


# -- the corpus --------------------------------------------------------------------------------------------------

CASES = [
    # names that become paths
    Case("version-escapes-home", importing(version="../../../x"), "dataset version '../../../x' is not a valid name"),
    Case("version-replaces-other-dataset", importing(version="../other"), "not a valid name"),
    Case("version-dotdot", importing(version=".."), "not a valid name"),
    Case("version-empty", importing(version=""), "not a valid name"),
    Case("version-dot", importing(version="."), "not a valid name"),
    Case("version-slash", importing(version="a/b"), "not a valid name"),
    Case("version-absolute", importing(version="/tmp/x"), "not a valid name"),
    Case("name-escapes", importing(name="../x"), "dataset name '../x'"),
    Case("name-with-space", importing(name="my toy"), "dataset name 'my toy'"),
    Case("name-reserved-simulator", importing(name="simremc"), "reserved"),
    Case("name-reserved-task", importing(name="E003"), "reserved"),
    Case("name-very-long", importing(name="a" * 5000), "(4802 more characters)"),
    Case("bundle-model-name-escapes", bundle_of_records(_renamed("../../victim")), "model name in the records"),
    Case("bundle-model-name-slash", bundle_of_records(_renamed("a/b")), "not a valid name"),
    Case("bundle-empty-selection", lambda d: ["leaderboard", "bundle", str((d / "empty").mkdir() or d / "empty")],
         "nothing to bundle"),
    Case("submit-name-escapes", cli(["submit", "x.py:X", "--name", "../x"]), "submission name '../x'"),
    # data files
    Case("import-missing-path", lambda d: ["data", "import", str(d / "nope"), "--name", "a"], "nope"),
    Case("csv-binary", importing(train=os.urandom(3000)), "train.csv"),
    Case("csv-latin1", importing(train=_replace_line(GOOD, 0, "caf\xe9,1,1,2,3,4,5,0").encode("latin-1")),
         "train.csv"),
    Case("csv-nul-bytes", importing(train=GOOD.replace("g0001", "g\x0001", 1)), "train.csv"),
    Case("csv-wrong-columns", importing(train=_replace_line(GOOD, 3, "g0000,4,1,2,3,0")), "train.csv"),
    Case("csv-negative-count", importing(train=_replace_line(GOOD, 3, "g0000,4,1,-2,3,4,5,0")), "train.csv"),
    Case("csv-non-integer-count", importing(train=_replace_line(GOOD, 3, "g0000,4,1,2.5,3,4,5,0")), "train.csv"),
    Case("csv-missing-count", importing(train=_replace_line(GOOD, 3, "g0000,4,1,,3,4,5,0")), "train.csv"),
    Case("csv-bins-out-of-order", importing(train=_replace_line(GOOD, 3, "g0000,7,1,2,3,4,5,0")), "train.csv"),
    Case("csv-label-changes", importing(train=_replace_line(GOOD, 3, "g0000,4,1,2,3,4,5,1")), "train.csv"),
    Case("csv-99-bins", importing(train="\n".join(GOOD.splitlines()[1:]) + "\n"), "train.csv"),
    Case("csv-duplicate-gene", importing(train=GOOD + "\n".join(_gene_rows("g0000", 0)) + "\n"), "train.csv"),
    Case("csv-empty", importing(train=""), "train.csv"),
    Case("csv-single-class", importing(train="\n".join(_gene_rows("g0000", 1) + _gene_rows("g0001", 1)) + "\n"),
         "train.csv"),
    Case("csv-huge-field", importing(train=_replace_line(GOOD, 3, "g0000,4,x" + "9" * 100_000 + ",2,3,4,5,0")),
         "more characters"),
    Case("import-twice", lambda d: (CliRunner().invoke(main, importing()(d)), importing()(d))[1], "already registered"),
    # saved models
    Case("config-not-json", saved_model(raw="{not json"), "invalid JSON"),
    Case("config-a-list", saved_model(raw="[1, 2, 3]"), "config.json"),
    Case("config-weights-number", saved_model(lambda c: c.update(weights=123), neural=True), "'weights'"),
    Case("config-params-null", saved_model(lambda c: c.update(params=None)), "params"),
    Case("config-params-list", saved_model(lambda c: c.update(params=[1, 2])), "params"),
    Case("config-param-wrong-type", saved_model(lambda c: c["params"].update(C="strong")), "'strong'"),
    Case("config-param-negative", saved_model(lambda c: c["params"].update(C=-5)), "C"),
    Case("config-param-float-for-int", saved_model(lambda c: c["params"].update(max_iter=10.5)), "max_iter"),
    Case("config-param-string-int", saved_model(lambda c: c["params"].update(max_iter="50")), "max_iter"),
    Case("config-unknown-model", saved_model(lambda c: c.update(model="nonexistent-model")), "nonexistent-model"),
    Case("config-file-outside", saved_model(lambda c: c.update(weights="../../outside.skops"), neural=True), "outside"),
    Case("config-absolute-file", saved_model(lambda c: c.update(weights="/etc/passwd"), neural=True), "outside"),
    Case("config-filters-negative", saved_model(lambda c: c["params"].update(n_filters=-5), neural=True), "n_filters"),
    Case("config-filters-string", saved_model(lambda c: c["params"].update(n_filters="50"), neural=True), "n_filters"),
    Case("config-filters-float", saved_model(lambda c: c["params"].update(n_filters=10.5), neural=True), "n_filters"),
    Case("config-stop-reason-unknown", saved_model(lambda c: c["training"].update(stopped="early_stopping"),
                                                    neural=True), "model format 1"),
    Case("model-dir-missing", cli(["predict", "/nonexistent/model", "x.csv", "-o", "p.csv"]), "nonexistent"),
    # training parameters
    Case("param-filters-zero", training(["-m", "deepchrome", "--param", "n_filters=0"]), "n_filters"),
    Case("param-filters-negative", training(["-m", "dc", "--param", "n_filters=-5"]), "n_filters"),
    Case("param-dropout-5", training(["-m", "deepchrome", "--param", "dropout=5"]), "dropout"),
    Case("param-svm-C-negative", training(["-m", "svm", "--param", "C=-1"]), "C"),
    Case("param-unknown", training(["-m", "lr", "--param", "bogus=1"]), "bogus"),
    Case("param-no-equals", training(["-m", "lr", "--param", "C"]), "KEY=VALUE"),
    Case("param-lr-zero", training(["-m", "deepchrome", "--param", "lr=0"]), "lr"),
    Case("param-batch-zero", training(["-m", "deepchrome", "--param", "batch_size=0"]), "batch_size"),
    Case("param-hidden-negative", training(["-m", "ac", "--param", "hidden_bins=-3"]), "hidden_bins"),
    Case("param-rf-trees-zero", training(["-m", "rf", "--param", "n_estimators=0"]), "n_estimators"),
    # names on the command line
    Case("unknown-model", running(["-m", "atentivechrome"]), "did you mean 'attentivechrome'"),
    Case("unknown-task", running(["-t", "E999"]), "E999"),
    Case("task-outside-suite", running(["--suite", "quick", "-t", "E004", "-m", "lr"]), "not part of suite 'quick'"),
    Case("bad-seeds", running(["--seeds", "abc"]), "abc"),
    Case("bad-genes", running(["-t", "E003", "--genes", "1,2"]), "TRAIN,VALID,TEST"),
    Case("negative-trials", running(["--trials", "-1"]), "-1"),
    Case("unknown-dataset", running(["--data", "nosuch", "-t", "E003"]), "nosuch"),
    Case("unknown-task-show", cli(["tasks", "show", "E999"]), "E999"),
    Case("unknown-suite", cli(["tasks", "list", "--suite", "quik"]), "did you mean 'quick'"),
    # bundles
    Case("validate-missing-path", cli(["leaderboard", "validate", "/nonexistent/bundles"]), "no bundle found"),
    # state under CHROMBENCH_HOME
    Case("registry-entry-missing-field", lambda d: _broken_registry(d, drop="path"), "lacks a valid 'path' field"),
    Case("registry-not-json", lambda d: _broken_registry(d, raw="{oops"), "is corrupt"),
    Case("run-with-an-imported-name", lambda d: ["run", "-t", "nosuchtoy", "-m", "lr", "--output-dir", str(d / "o")],
         "nosuchtoy"),
]


def _broken_registry(d: Path, drop: str | None = None, raw: str | None = None) -> list[str]:
    CliRunner().invoke(main, importing()(d))
    reg_path = Path(os.environ["CHROMBENCH_HOME"]) / "registry.json"
    if raw is not None:
        reg_path.write_text(raw)
    else:
        reg = json.loads(reg_path.read_text())
        del reg["datasets"]["mytoy"][drop]
        reg_path.write_text(json.dumps(reg))
    return ["data", "info", "mytoy"]


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    home = tmp_path / "home"
    outside = tmp_path / "outside" / "victim"
    outside.mkdir(parents=True)
    (outside / "precious.txt").write_text("keep me")
    (tmp_path / "outside.skops").write_text("not a model")
    monkeypatch.setenv("CHROMBENCH_HOME", str(home))
    case_dir = tmp_path / "case"
    case_dir.mkdir()
    monkeypatch.chdir(case_dir)
    return tmp_path, case_dir, home


def _snapshot(root: Path, skip: Path) -> dict:
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*")) if skip not in p.parents and p != skip and "case" not in p.parts[:len(root.parts) + 1]}


# Each training case generates a task in a fresh home (~2 s); two of them stay in the fast loop, the rest run in the
# full suite.
SLOW_CASES = {"param-dropout-5", "param-batch-zero", "param-filters-zero", "param-svm-C-negative", "param-filters-negative", "param-rf-trees-zero", "param-hidden-negative", "param-lr-zero"}


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c.id in SLOW_CASES else c for c in CASES],
                         ids=[c.id for c in CASES])
def test_bad_input_is_a_clear_error_and_changes_nothing_outside(case, sandbox):
    root, case_dir, home = sandbox
    args = case.setup(case_dir)
    before = _snapshot(root, home)
    registry = (home / "registry.json").read_bytes() if (home / "registry.json").exists() else None
    res = CliRunner().invoke(main, args)
    output = res.output
    codes = case.code if isinstance(case.code, tuple) else (case.code,)
    assert res.exit_code in codes, f"exit {res.exit_code}: {output[-1500:]}"
    assert res.exception is None or isinstance(res.exception, SystemExit), \
        f"a traceback reached the user: {type(res.exception).__name__}: {res.exception}"
    assert "Traceback" not in output
    assert case.says in output, output[-1500:]
    longest = max((len(line) for line in output.splitlines()), default=0)
    assert longest <= MAX_MESSAGE + 300, f"a {longest}-character line: quote less of the value"
    if case.files_outside_unchanged:
        assert _snapshot(root, home) == before, "something outside the managed roots changed"
        if registry is not None and case.id != "import-twice":
            assert (home / "registry.json").read_bytes() == registry
    assert (root / "outside" / "victim" / "precious.txt").read_text() == "keep me"
    if case.extra:
        case.extra(case_dir)


def test_the_corpus_is_large_and_covers_every_kind():
    kinds = {c.id.split("-")[0] for c in CASES}
    assert len(CASES) >= 60 and {"version", "name", "bundle", "csv", "config", "param", "unknown"} <= kinds


def test_a_model_name_with_html_is_escaped_in_every_output(tmp_path, records_factory, records_writer):
    """A submitted name is anyone's text: never raw HTML in leaderboard.md (any table) or index.html."""
    from chrombench.leaderboard import render as lb

    evil = "<img src=x onerror=alert(1)>|x"
    recs = records_factory({evil: {"E003": [0.8, 0.8, 0.8], "E112": [0.7] * 3}})
    for r in recs:
        if r["kind"] == "seed" and r["seed"] == 0:  # with interpretation scores, so that table is drawn
            from chrombench import results

            body = {k: v for k, v in r.items() if k != "digest"}
            body["interpretation"] = {"attention": {"cell_auroc": 0.7}, "random": {"cell_auroc": 0.5}}
            body["interpretation_genes"] = 100
            r.clear()
            r.update(results.seal(body))
    records_writer(tmp_path / "out", recs)
    page = lb.render([tmp_path / "out"], tmp_path / "board", n_boot=0)
    md, html_text = page.markdown.read_text(), page.html.read_text()
    import re

    prose = re.sub(r"(`+).*?\1", "", md)  # code spans show text literally; everywhere else it must be escaped
    assert "<img" not in prose and "&lt;img src=x onerror=alert(1)&gt;\\|x" in md
    assert "<img src=x" not in html_text
