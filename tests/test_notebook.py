"""examples/own_loop.ipynb runs top to bottom, as CI executes it: from load_task to a page with its row
beside the zoo, the row marked as predictions from outside the engine. About 20 s of CPU on 2 cores."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.slow
def test_own_loop_notebook_runs_and_puts_its_row_beside_the_zoo(tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("OWN_LOOP_OUT", str(tmp_path / "own-loop"))  # the kernel inherits it (and CHROMBENCH_HOME)
    nb = nbformat.read(EXAMPLES / "own_loop.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(EXAMPLES)}}).execute()
    printed = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "accepted" in printed  # the bundle of its records passes `leaderboard validate`
    page = (tmp_path / "own-loop" / "page" / "leaderboard.md").read_text()
    row = next(line for line in page.splitlines() if line.startswith("| ") and "| my-mlp ‡ |" in line)
    assert "predictions from outside the engine" in row and row in printed
    assert "| attentivechrome |" in page and "| deepchrome |" in page  # beside the zoo, in one section
    assert page.count("\n## ") >= 2 and "quick" in page
