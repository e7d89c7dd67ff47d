"""The task registry and its CLI."""

import json

import pytest
from click.testing import CliRunner

from chrombench.cli import main
from chrombench.errors import UnknownNameError
from chrombench.tasks import all_specs, get_spec, get_suite

from toydata import SHARED_DATA as SHARED  # noqa: E402


def test_56_tasks_match_the_published_table():
    rows = [l.split("\t") for l in (SHARED / "remc56-celltypes.tsv").read_text().splitlines()[1:]]
    specs = all_specs()
    assert len(specs) == 56 and [r[0] for r in rows] == list(specs)
    for eid, name, auc in rows:
        spec = specs[eid]
        assert spec.name == name and spec.reported_deepchrome_auroc == float(auc)
        assert spec.split_sizes == {"train": 6601, "valid": 6601, "test": 6600}
        assert "Bioinformatics" in spec.reported[0].citation


def test_suites():
    assert get_suite("roadmap56").tasks == tuple(all_specs())
    quick = get_suite("quick")
    assert 2 <= len(quick.tasks) <= 5 and quick.genes["train"] < 6601
    groups = {get_spec(t).group for t in quick.tasks}
    assert len(groups) == len(quick.tasks)  # diverse cell types
    assert any(get_spec(t).esc_like for t in quick.tasks)


def test_unknown_names_suggest():
    with pytest.raises(UnknownNameError, match="did you mean 'E003'"):
        get_spec("E0003")
    with pytest.raises(UnknownNameError, match="did you mean 'quick'"):
        get_suite("quik")


def test_cli_list_json_and_show():
    runner = CliRunner()
    res = runner.invoke(main, ["tasks", "list", "--format", "json"])
    assert res.exit_code == 0
    rows = json.loads(res.output)
    assert len(rows) == 56 and rows[0]["eid"] == "E003"
    res = runner.invoke(main, ["tasks", "list"])
    assert res.exit_code == 0 and "E128" in res.output and "56 tasks" in res.output
    res = runner.invoke(main, ["tasks", "show", "e3"])
    assert res.exit_code == 0 and "H1_Cell_Line" in res.output and "0.77" in res.output


def test_cli_unknown_task_exits_2_with_suggestion():
    res = CliRunner().invoke(main, ["tasks", "show", "E1166"])
    assert res.exit_code == 2 and "did you mean" in res.output
    res = CliRunner().invoke(main, ["taks"])
    assert res.exit_code == 2 and "did you mean 'tasks'" in res.output


def test_python_dash_m_chrombench_is_the_command_line(monkeypatch, capsys):
    """``python -m chrombench`` (what the cluster recipe's workers and the tests' subprocesses run) is the
    same command line, run here in-process so that ``chrombench/__main__.py`` counts as reached."""
    import runpy
    import sys

    from chrombench import __version__

    monkeypatch.setattr(sys, "argv", ["chrombench", "--version"])
    with pytest.raises(SystemExit) as done:
        runpy.run_module("chrombench", run_name="__main__")
    assert done.value.code == 0 and f"chrombench, version {__version__}" in capsys.readouterr().out
