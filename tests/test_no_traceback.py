"""No traceback reaches a user: failures of the operating system, of depth, of memory, non-finite
metrics and misbehaving plugins end a command with one line that names the file, value or model,
and nothing half-written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from chrombench import results
from chrombench.cli import main
from chrombench.data import importer

TOYS = str(Path(__file__).with_name("hostile_toys.py"))


def cli(*args) -> tuple[int, str]:
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exc_info
    assert "Traceback" not in res.output
    return res.exit_code, res.output


def one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("Error")]
    assert len(lines) == 1, output
    return lines[0]


@pytest.fixture
def tiny(home, tmp_path, write_task_csvs):
    write_task_csvs(tmp_path / "src", n_genes=60)
    importer.import_dataset(tmp_path / "src", "tiny")
    return "tiny"


@pytest.mark.parametrize("toy,expected", [
    ("ExitsInFit", "model ExitsInFit called sys.exit(0) in fit"),
    ("OutOfRange", "model OutOfRange.predict_proba returned"),
    ("ThreeColumns", "model ThreeColumns.predict_proba returned shape (60, 3)"),
    ("NaNOutput", "must be finite and in [0, 1]"),
])
def test_a_misbehaving_plugin_is_refused_by_name(tmp_path, tiny, toy, expected):
    code, out = cli("train", "-m", f"{TOYS}:{toy}", "-t", tiny, "-o", tmp_path / "model")
    assert code != 0 and expected in one_error_line(out)
    assert not (tmp_path / "model").exists(), "nothing is saved from a refused model"


def test_a_huge_param_is_one_line_naming_the_model(tmp_path, tiny):
    code, out = cli("train", "-m", f"{TOYS}:Wide", "-t", tiny, "--param", f"width={10 ** 15}", "-o", tmp_path / "m")
    line = one_error_line(out)
    assert code != 0 and "Wide ran out of memory" in line and str(10 ** 15) in line
    assert not (tmp_path / "m").exists()


def test_empty_seeds_is_an_error_not_the_default_seeds(tmp_path, tiny):
    code, out = cli("run", "-m", "logistic-regression", "-t", tiny, "--seeds", "", "--output-dir", tmp_path / "out")
    assert code == 2 and "--seeds" in out
    assert not (tmp_path / "out" / "results").exists()


@pytest.mark.parametrize("where", ["existing file", "under a file", "under /proc"])
def test_render_to_a_place_it_cannot_write_is_one_line(tmp_path, records_factory, records_writer, where):
    records_writer(tmp_path / "run", records_factory({"m": {"E003": [0.8, 0.81, 0.82]}}))
    (tmp_path / "afile").write_text("precious")
    out = {"existing file": tmp_path / "afile", "under a file": tmp_path / "afile" / "page",
           "under /proc": Path("/proc/chrombench-test/page")}[where]
    code, text = cli("leaderboard", "render", "--results", tmp_path / "run", "--out", out, "--bootstrap", "0")
    line = one_error_line(text)
    assert code == 1 and (str(out) in line or str(out.parent) in line)
    assert (tmp_path / "afile").read_text() == "precious"


def test_non_finite_metrics_are_left_out_of_the_page_naming_the_file(tmp_path, records_factory, records_writer):
    recs = records_factory({"good": {"E003": [0.8, 0.81, 0.82]}, "bad": {"E003": [0.8, 0.81, 0.82]}})
    paths = records_writer(tmp_path / "run", recs)
    bad = next(p for p in paths if "/bad/" in str(p) and p.name == "seed-0.json")
    bad.write_text(bad.read_text().replace('"auroc": 0.8', '"auroc": NaN', 1))
    code, text = cli("leaderboard", "render", "--results", tmp_path / "run", "--out", tmp_path / "page",
                     "--bootstrap", "0")
    assert code == 0
    assert str(bad) in text and "not a finite number" in text


@pytest.mark.parametrize("content", ["[" * 100_000, "{\"a\":" * 50_000 + "1" + "}" * 50_000, "\x00\x01binary"])
def test_deep_or_binary_json_in_a_bundle_is_named_not_a_crash(tmp_path, records_factory, simulated_home, content):
    from test_validate import make_bundle

    bundle = make_bundle(tmp_path / "lb", records_factory)
    victim = bundle / "records" / "E003" / "seed-0.json"
    victim.write_text(content)
    code, text = cli("leaderboard", "validate", "--no-pages", bundle)
    assert code == 1 and str(victim) in text


@pytest.mark.parametrize("content", ["[" * 100_000, "\x00\x01binary"])
def test_deep_or_binary_json_in_a_saved_model_is_one_line(tmp_path, tiny, content):
    model = tmp_path / "model"
    code, _ = cli("train", "-m", "logistic-regression", "-t", tiny, "-o", model)
    assert code == 0
    (model / "config.json").write_text(content)
    code, text = cli("predict", model, tmp_path / "src" / "test.csv", "-o", tmp_path / "p.csv")
    assert code != 0 and one_error_line(text)
    assert not (tmp_path / "p.csv").exists()


def test_a_record_nested_too_deeply_is_a_problem_not_a_crash():
    deep: dict = {}
    node = deep
    for _ in range(5000):
        node["x"] = {}
        node = node["x"]
    assert results.problems({"kind": "seed", "deep": deep})


@pytest.mark.slow
def test_bundling_a_one_seed_run_says_at_once_what_the_protocol_needs(tmp_path, tiny):
    code, out = cli("run", "-m", "logistic-regression", "-t", tiny, "--seeds", "0", "--trials", "0",
                    "--output-dir", tmp_path / "out", "--no-progress")
    assert code == 0, out
    code, out = cli("leaderboard", "bundle", tmp_path / "out" / "results", "--suite", "tasks",
                    "--out", tmp_path / "zoo")
    line = one_error_line(out)
    assert code != 0 and "needs 3 per task" in line and "--seeds 0,1,2" in line
    assert not (tmp_path / "zoo").exists() or not any((tmp_path / "zoo").iterdir())
