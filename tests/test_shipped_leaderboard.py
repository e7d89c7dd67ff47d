"""What the repository ships under leaderboards/ must stay valid and complete."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from chrombench.cli import main
from chrombench.models.registry import zoo_names

ROOT = Path(__file__).resolve().parents[1] / "leaderboards"


@pytest.fixture(scope="module", autouse=True)
def home(shared_home):
    """The session's shared CHROMBENCH_HOME: validating the bundles regenerates their simulated tasks to
    check their content hashes (the roadmap56 bundles' 56 full-size tasks: ~70 s and 2.5 GB), once here
    rather than once per test; the quick tasks are often there already."""
    return shared_home


# simremc 1.2's table is validated by its own module (test_shipped_leaderboard_12.py): its 56 tasks are
# other tasks to generate, and a module of its own lets a parallel test run (pytest -n 2) do both at once
SIMREMC_12 = "roadmap56-simremc-1.2"


@pytest.mark.slow  # regenerates the 56 full-size simulated tasks to check their hashes (~70 s, 2.5 GB)
def test_committed_bundles_validate():
    shipped = sorted(str(p) for p in ROOT.iterdir() if p.is_dir() and p.name != SIMREMC_12)
    assert len(shipped) >= 4  # the quick zoo and page, the roadmap56 table, the submissions
    res = CliRunner().invoke(main, ["leaderboard", "validate", *shipped])
    assert res.exit_code == 0, res.output
    assert "bundles accepted" in res.output


def test_shipped_quick_page_has_every_zoo_model_and_how_to_reproduce():
    md = (ROOT / "quick-simremc" / "leaderboard.md").read_text()
    assert "Reproduce with: `chrombench run" in md.splitlines()[2]
    missing = [name for name in zoo_names() if f"| {name} |" not in md]
    assert not missing, f"not on the quick page: {', '.join(missing)}; add their rows with\n{add_rows_command(md, missing)}"
    assert "simulated" in md and "Reported on the real REMC data" in md
    html = (ROOT / "quick-simremc" / "index.html").read_text()
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html.replace("https://www.w3.org", "")


def add_rows_command(md: str, names: list[str]) -> str:
    """One command line that runs ``names`` on the quick suite, bundles them into leaderboards/zoo and
    renders the page again, its reproduce line extended by the same run."""
    title = md.splitlines()[0].removeprefix("# ")
    reproduce = md.splitlines()[2].removeprefix("Reproduce with: `").removesuffix("`")
    run = "chrombench run " + " ".join(f"-m {n}" for n in names) + " --suite quick"
    bundle = "chrombench leaderboard bundle --suite quick --out leaderboards/zoo --overwrite"
    extended = reproduce.replace(f" && {bundle}", f" && {run} && {bundle}", 1)
    models = " ".join(f"-m {n}" for n in names)
    return (f"{run} && chrombench leaderboard bundle --suite quick {models} --out leaderboards/zoo && "
            f"chrombench leaderboard render --results leaderboards/zoo --results leaderboards/submissions "
            f"--out leaderboards/quick-simremc --title '{title}' --reproduce \"{extended}\"")


def test_the_command_that_adds_a_row_reproduces_the_page_with_it():
    md = (ROOT / "quick-simremc" / "leaderboard.md").read_text()
    command = add_rows_command(md, ["new-model"])
    assert command.startswith("chrombench run -m new-model --suite quick && chrombench leaderboard bundle")
    assert "--out leaderboards/quick-simremc" in command
    extended = command.split('--reproduce "', 1)[1].removesuffix('"')
    assert "chrombench run -m new-model --suite quick && chrombench leaderboard bundle" in extended  # before the bundling
    assert extended.replace("chrombench run -m new-model --suite quick && ", "") == \
        md.splitlines()[2].removeprefix("Reproduce with: `").removesuffix("`")


def test_the_shipped_page_is_what_chrombench_renders_from_the_committed_bundles(tmp_path):
    """The page cannot drift from its records: rendered again from leaderboards/zoo and
    leaderboards/submissions, with the command at its top, it comes out the same."""
    from chrombench.leaderboard.render import render

    shipped = ROOT / "quick-simremc"
    title, _, first = (shipped / "leaderboard.md").read_text().splitlines()[:3]
    command = first.removeprefix("Reproduce with: `").removesuffix("`")
    again = render([ROOT / "zoo", ROOT / "submissions"], tmp_path, reproduce=command, title=title.removeprefix("# "))
    assert again.markdown.read_text() == (shipped / "leaderboard.md").read_text()
    assert again.csv.read_text() == (shipped / "leaderboard.csv").read_text()
    assert not again.board.skipped  # every shipped record was shown


@pytest.mark.slow  # renders 56 tasks with a 200-draw bootstrap
def test_the_roadmap56_page_is_what_chrombench_renders_from_its_bundles(tmp_path):
    """The full-size table: rendered again from leaderboards/roadmap56-simremc/zoo it comes out the
    same, every shipped record is shown, and the page states the data it was measured on."""
    from chrombench.leaderboard.render import render

    shipped = ROOT / "roadmap56-simremc"
    title, _, first = (shipped / "leaderboard.md").read_text().splitlines()[:3]
    command = first.removeprefix("Reproduce with: `").removesuffix("`")
    again = render([shipped / "zoo"], tmp_path, reproduce=command, title=title.removeprefix("# "),
                   n_boot=200)  # as build.sh renders it
    md = again.markdown.read_text()
    assert md == (shipped / "leaderboard.md").read_text()
    assert again.csv.read_text() == (shipped / "leaderboard.csv").read_text()
    assert not again.board.skipped
    (section,) = again.board.sections
    assert len(section.tasks) == 56 and section.genes is None and section.simulated
    assert f"content hash {section.content_hash[:16]}" in md and "Spearman" in md
    assert all(section.fits(m)["unconverged"] == 0 for m in section.models)  # converged fits only
