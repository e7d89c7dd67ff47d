"""Rendering the leaderboard from result records: zero, one and many models; datasets never mixed;
published figures in their own section; tampered records left out; the console table."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from chrombench.cli import main
from chrombench.data.layout import simremc_version
from chrombench.leaderboard import render as lb
from chrombench.leaderboard.collect import collect_dirs
from chrombench.leaderboard.reported import SECTION_TITLE

TASKS = ["E003", "E112", "E123", "E116"]
SIM = simremc_version()
MODELS = {"attentivechrome": 0.82, "deepchrome": 0.79, "lstm": 0.80, "xgboost": 0.76}


def aurocs(models: dict, tasks=TASKS, seeds: int = 3, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    task_shift = {t: rng.normal(0, 0.03) for t in tasks}
    return {m: {t: [float(b + task_shift[t] + rng.normal(0, 0.005)) for _ in range(seeds)] for t in tasks}
            for m, b in models.items()}


def md_sections(md: str) -> dict[str, str]:
    """'## heading' -> the text up to the next '## ' heading."""
    parts = re.split(r"^## ", md, flags=re.M)
    return {p.splitlines()[0]: p for p in parts[1:]}


@pytest.fixture
def many(tmp_path, records_factory, records_writer):
    """4 models x 4 simulated tasks, plus 2 models on one imported real dataset."""
    sim = records_factory(aurocs(MODELS), oracle={t: 0.93 for t in TASKS})
    real = records_factory(aurocs({"svm": 0.7, "random-forest": 0.72}, tasks=["E003", "E004"]),
                           dataset="mydata", version="1", simulated=False, suite=None)
    records_writer(tmp_path / "out", sim + real)
    return tmp_path / "out" / "results"


def test_zero_results_page_says_how_to_produce_them(tmp_path):
    r = lb.render([tmp_path / "nothing-here"], tmp_path / "board")
    for f in (r.markdown, r.csv, r.html):
        assert f.is_file()
    md, page = r.markdown.read_text(), r.html.read_text()
    assert "No results yet" in md and "chrombench run" in md
    assert "No results yet" in page and "chrombench run" in page
    assert SECTION_TITLE in md  # the published figures are still worth showing
    assert r.csv.read_text().splitlines() == [",".join(lb.CSV_FIELDS)]


def test_one_model_renders_without_rank_statistics(tmp_path, records_factory, records_writer):
    records_writer(tmp_path / "out", records_factory(aurocs({"lstm": 0.8}, tasks=["E003", "E112"])))
    r = lb.render([tmp_path / "out"], tmp_path / "board")
    md = r.markdown.read_text()
    assert "| 1 | lstm |" in md
    assert "Friedman" not in md  # nothing to rank against
    page = r.html.read_text()
    assert 'data-model="lstm"' in page and page.count("<svg") >= 2  # heatmap and distribution


def test_many_models_every_model_every_dataset_in_its_own_section(many, tmp_path):
    r = lb.render([many], tmp_path / "board")
    md = r.markdown.read_text()
    sections = md_sections(md)
    sim = next(v for k, v in sections.items() if k.startswith("simremc"))
    real = next(v for k, v in sections.items() if k.startswith("mydata"))
    for m in MODELS:
        assert f"| {m} |" in sim and m not in real
    for m in ("svm", "random-forest"):
        assert f"| {m} |" in real and m not in sim
    assert "simulated data" in next(k for k in sections if k.startswith("simremc"))
    # an imported dataset is real measurements but not the REMC archive: "own data", never "real data"
    assert "(own data)" in next(k for k in sections if k.startswith("mydata"))
    assert "real data" not in next(k for k in sections if k.startswith("mydata"))
    assert "Friedman test over 4 tasks, 4 models" in sim and "CD = " in sim
    assert "oracle (ceiling)" in sim and "oracle" not in real.split("###")[0]
    # wins vs deepchrome only where deepchrome was measured, out of the tasks both have
    assert "wins vs deepchrome" in sim and "/4 |" in sim

    rows = list(csv.DictReader(r.csv.open()))
    assert len(rows) == len(MODELS) * len(TASKS) + 2 * 2
    by_dataset = {}
    for row in rows:
        by_dataset.setdefault(row["dataset"], set()).add(row["model"])
    assert by_dataset == {"simremc": set(MODELS), "mydata": {"svm", "random-forest"}}
    assert {row["simulated"] for row in rows if row["dataset"] == "mydata"} == {"false"}

    page = r.html.read_text()
    assert page.count('<section class="results"') == 2
    for m in list(MODELS) + ["svm", "random-forest"]:
        assert f'data-model="{m}"' in page
    # works offline: nothing is loaded from anywhere (XML namespaces are names, not downloads)
    assert not re.search(r"""(src|href)=["']?(https?:)?//|<link |@import|url\(\s*["']?https?:""", page)


def test_reported_figures_are_a_separate_labelled_section(many, tmp_path):
    md = lb.render([many], tmp_path / "board").markdown.read_text()
    sections = md_sections(md)
    rep = sections[SECTION_TITLE]
    assert "AttentiveChrome" in rep and "49/56" in rep and "0.8115" in rep
    assert "Singh" in rep and "Bioinformatics" in rep  # citations
    assert "| E003 | H1_Cell_Line | 0.77 |" in rep  # per-task DeepChrome from the task spec
    measured = "".join(v for k, v in sections.items() if k != SECTION_TITLE and not k.startswith(lb.RELATIONS_TITLE))
    assert "0.8115" not in measured and "AttentiveChrome (" not in measured
    # published numbers next to measured ones only in their own, labelled comparison section
    relations = next(v for k, v in sections.items() if k.startswith(lb.RELATIONS_TITLE))
    assert "published mean AUROC (real data)" in relations and "0.8115 vs 0.8008" in relations
    assert list(sections).index(SECTION_TITLE) > max(i for i, k in enumerate(sections) if k.startswith("simremc"))


def test_sections_per_dataset_version(tmp_path, records_factory, records_writer):
    v1 = records_factory(aurocs({"lstm": 0.8}), version="1.0+seed0")
    v2 = records_factory(aurocs({"lstm": 0.7}), version="1.0+seed7")
    records_writer(tmp_path / "a", v1)
    records_writer(tmp_path / "b", v2)
    board = lb.render([tmp_path / "a", tmp_path / "b"], tmp_path / "board").board
    assert [(s.dataset, s.version) for s in board.sections] == [("simremc", "1.0+seed0"), ("simremc", "1.0+seed7")]


def test_edited_record_is_left_out_and_listed(tmp_path, records_factory, records_writer):
    paths = records_writer(tmp_path / "out", records_factory(aurocs({"lstm": 0.8, "xgboost": 0.75})))
    summary = next(p for p in paths if p.name == "summary.json" and "xgboost" in str(p))
    rec = json.loads(summary.read_text())
    rec["metrics"]["test_auroc"]["mean"] = 0.99  # a better number, typed in by hand
    summary.write_text(json.dumps(rec))
    r = lb.render([tmp_path / "out"], tmp_path / "board")
    md = r.markdown.read_text()
    assert "0.990" not in md
    assert "## Records left out" in md and str(summary) in md and "digest does not match" in md


def test_confidence_intervals_bootstrap_with_predictions_else_over_seeds(tmp_path, records_factory, records_writer):
    paths = records_writer(tmp_path / "out", records_factory(aurocs({"lstm": 0.8, "xgboost": 0.75}, tasks=["E003"])))
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    for p in paths:
        if p.name.startswith("seed-") and "lstm" in str(p):
            with open(p.with_name(p.stem + ".predictions.csv"), "w") as fh:
                fh.write("gene_id,probability,label\n")
                for i, (label, s) in enumerate(zip(y, y + rng.normal(0, 1, y.size))):
                    fh.write(f"{i:06d},{1 / (1 + np.exp(-s)):.6f},{label}\n")
    r = lb.render([tmp_path / "out"], tmp_path / "board", n_boot=200)
    rows = {row["model"]: row for row in csv.DictReader(r.csv.open())}
    assert rows["lstm"]["ci_method"] == "bootstrap over test genes"
    assert rows["xgboost"]["ci_method"] == "t-interval over seeds"
    xgb = {k: float(rows["xgboost"][k]) for k in ("ci_low", "test_auroc_mean", "ci_high")}
    assert xgb["ci_low"] < xgb["test_auroc_mean"] < xgb["ci_high"]
    assert "bootstrap over test genes" in r.markdown.read_text()


def test_reproduce_command_inferred_or_given(many, tmp_path):
    r = lb.render([many], tmp_path / "board", render_command="chrombench leaderboard render --out x")
    first = [line for line in r.markdown.read_text().splitlines() if line.startswith("Reproduce with:")][0]
    assert "chrombench run --suite quick" in first and "--data mydata" in first
    assert first.rstrip("`").endswith("chrombench leaderboard render --out x")
    r = lb.render([many], tmp_path / "board", reproduce="make leaderboard")
    assert "Reproduce with: `make leaderboard`" in r.markdown.read_text()
    assert "make leaderboard" in r.html.read_text().split("<section")[0]  # at the top of the page


def test_cli_render_writes_the_three_files(many, tmp_path):
    out = tmp_path / "quick-simremc"
    res = CliRunner().invoke(main, ["leaderboard", "render", "--results", str(many), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert {p.name for p in out.iterdir()} >= {"leaderboard.md", "leaderboard.csv", "index.html"}
    top = out.joinpath("leaderboard.md").read_text().splitlines()[2]
    assert top.startswith("Reproduce with:") and f"--out {out}" in top
    assert f"simremc {SIM}: 4 models x 4 tasks" in res.output


def test_console_table_lists_models_tasks_and_the_simulated_flag(records_factory):
    summaries = [r for r in records_factory(aurocs(MODELS), oracle={t: 0.93 for t in TASKS})
                 if r["kind"] == "summary"]
    text = lb.console_table(summaries)
    lines = text.splitlines()
    assert "simulated" in lines[0]
    for m in MODELS:
        assert any(line.startswith(m) for line in lines)
    assert all(t in lines[1] for t in TASKS) and "mean" in lines[1]
    assert any(line.startswith("oracle (ceiling)") and "0.930" in line for line in lines)
    assert lb.console_table([]) == "No results to show."


def test_a_subsample_and_the_full_task_are_never_ranked_together(tmp_path, records_factory, records_writer):
    quick = {"train": 800, "valid": 400, "test": 400}
    records_writer(tmp_path / "a", records_factory(aurocs({"lstm": 0.8, "xgboost": 0.75}), genes=quick,
                                                   content_hashes={t: f"{k:064x}" for k, t in enumerate(TASKS)}))
    records_writer(tmp_path / "b", records_factory(aurocs({"deepchrome": 0.9}), suite="roadmap56"))
    board = collect_dirs(tmp_path / "a", tmp_path / "b")
    assert sorted((s.genes is None, s.models[0]) for s in board.sections) == [(False, "lstm"), (True, "deepchrome")]
    md = lb.markdown(board, [])
    assert f"simremc {SIM}, genes 800/400/400 (simulated data)" in md and f"simremc {SIM}, full size" in md


def test_a_record_on_other_data_for_the_same_task_is_left_out(tmp_path, records_factory, records_writer):
    """Same dataset name, version and subsample, but another test set (content hash) for one model."""
    records_writer(tmp_path / "out", records_factory(aurocs({"lstm": 0.8, "xgboost": 0.75})))
    odd = records_factory(aurocs({"svm": 0.99}, tasks=["E003"]), content_hashes={"E003": "f" * 64})
    records_writer(tmp_path / "out", odd)
    board = collect_dirs(tmp_path / "out")
    (section,) = board.sections
    assert "svm" not in section.models
    assert any("svm on E003 was measured on other data" in why for _, why in board.skipped)


def test_the_ranking_column_is_shown_when_models_cover_different_tasks(tmp_path, records_factory, records_writer):
    """The order uses the tasks every model has; each model's own mean may disagree with it."""
    full = aurocs({"lstm": 0.80, "xgboost": 0.78})
    partial = aurocs({"svm": 0.84}, tasks=["E003"])
    full["xgboost"]["E003"] = [0.95] * 3  # xgboost beats lstm on the one common task ...
    records_writer(tmp_path / "out", records_factory({**full, **partial}))
    (section,) = collect_dirs(tmp_path / "out").sections
    md = lb.markdown(collect_dirs(tmp_path / "out"), [])
    assert "mean AUROC, 1 common tasks" in md and "order of the table use the 1 of 4 tasks" in md
    rows = {r["model"]: r for r in lb._model_rows(section)}
    assert rows["xgboost"]["rank"] < rows["lstm"]["rank"] and rows["xgboost"]["common_mean"] > rows["lstm"]["common_mean"]


def test_model_names_cannot_break_the_markdown_table(tmp_path, records_factory, records_writer):
    records_writer(tmp_path / "out", records_factory(aurocs({"a|b<i>x</i>": 0.8, "lstm": 0.7})))
    md = lb.markdown(collect_dirs(tmp_path / "out"), [])
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert any("| a\\|b&lt;i&gt;x&lt;/i&gt; |" in r for r in rows) and not any("<i>" in r for r in rows)
    assert "-m 'a|b<i>x</i>'" in md  # the reproduce command is quoted for the shell


def test_few_tasks_say_that_no_difference_can_be_significant(tmp_path, records_factory, records_writer):
    records_writer(tmp_path / "out", records_factory(aurocs({"lstm": 0.8, "xgboost": 0.75}, tasks=TASKS[:3])))
    md = lb.markdown(collect_dirs(tmp_path / "out"), [])
    assert "With 3 tasks the signed-rank test cannot give p below 0.25" in md


def test_a_record_with_numbers_that_are_not_aurocs_is_left_out_not_a_crash(tmp_path, records_factory, records_writer):
    from chrombench import results

    recs = records_factory(aurocs({"lstm": 0.8, "xgboost": 0.75}))
    bad = next(r for r in recs if r["kind"] == "summary" and r["model"]["name"] == "xgboost")
    body = {k: v for k, v in bad.items() if k != "digest"}
    body["metrics"] = {**body["metrics"], "test_auroc": {"mean": "high", "std": 0.0, "values": [1.7]}}
    recs[recs.index(bad)] = results.seal(body)  # resealed: only the schema can catch it
    records_writer(tmp_path / "out", recs)
    r = lb.render([tmp_path / "out"], tmp_path / "board")
    md = r.markdown.read_text()
    assert "metrics/test_auroc/mean: 'high' is not of type 'number'" in md


def test_a_simremc_1_2_sections_commands_name_its_version(records_factory):
    """A record keeps the simulator's version apart from its name: the page's commands must ask for 1.2
    again (`--data simremc@1.2`), or they recompute the cells on 1.1."""
    from chrombench.leaderboard.collect import collect

    recs = records_factory({"m": {"E003": [0.8], "E112": [0.7]}}, version="1.2+seed0", suite=None)
    (section,) = collect(recs, n_boot=0).sections
    assert "--data simremc@1.2" in section.reproduce()
    assert "--data simremc@1.2" in section.reproduce_cell("m", "E003")
    (old,) = collect(records_factory({"m": {"E003": [0.8], "E112": [0.7]}}, suite=None), n_boot=0).sections
    assert "--data" not in old.reproduce()  # 1.1, the default, is not named
