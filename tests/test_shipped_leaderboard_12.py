"""The roadmap56 table on simremc 1.2, as far as the repository ships it, must stay valid: every column
bundled so far validates against 1.2's own data (the generator revision the records name)."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from chrombench.cli import main

TABLE = Path(__file__).resolve().parents[1] / "leaderboards" / "roadmap56-simremc-1.2"


@pytest.fixture(scope="module", autouse=True)
def home(shared_home):
    return shared_home


@pytest.mark.slow  # regenerates 1.2's 56 full-size tasks to check their hashes and test labels
def test_the_simremc_1_2_columns_validate():
    bundles = sorted((TABLE / "zoo").glob("*/bundle.json"))
    assert len(bundles) >= 6, "the 1.2 columns committed so far"
    res = CliRunner().invoke(main, ["leaderboard", "validate", str(TABLE)])
    assert res.exit_code == 0, res.output
    assert f"{len(bundles)} of {len(bundles)} bundles accepted" in res.output
