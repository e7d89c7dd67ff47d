"""``pytest --touched-modules``: fail the run if some module of the package ran no code under it.

The fast loop (``pytest -m "not slow"``) is only worth running if it reaches every room, so this option
checks that it does: ``pytest -m "not slow" --touched-modules`` lists each package module
(chrombench/, baselines/ as chrombench.baselines, tasks/ as chrombench.taskspecs) that no selected test
imported, and each one that defines functions of which no test called any, and fails the run if there is
one. Only this process is watched: code a test reaches through a ``chrombench`` subprocess does not count,
so every module needs an in-process test. Function calls are traced, not lines (a trace function for
each Python call, none for each line), which costs the run roughly a fifth more time; leave it off in the
inner loop itself.

Under pytest-xdist (``-n 2``) each worker traces its own tests and hands what it saw to the controller
when it finishes (``workeroutput``); the controller reports on the union, so the check means the same
with one process or several.
"""

from __future__ import annotations

import ast
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = ("chrombench", "baselines", "tasks")  # the import roots pyproject maps into the package


def package_modules() -> dict[str, bool]:
    """Absolute path of every package module -> whether it defines a function or method."""
    out = {}
    for folder in PACKAGE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            out[str(path)] = any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in ast.walk(tree))
    return out


class Tracker:
    """Which package files were imported, and in which a function ran, as calls happen."""

    def __init__(self, modules: dict[str, bool]):
        self.modules = modules
        self.imported: set[str] = set()
        self.called: set[str] = set()
        self._waiting = set(modules)  # files some of whose code has not been seen running yet

    def start(self) -> None:
        # modules imported before the run (conftest's imports) ran their bodies untraced
        for mod in list(sys.modules.values()):
            f = getattr(mod, "__file__", None)
            if f and str(Path(f).resolve()) in self.modules:
                self.imported.add(str(Path(f).resolve()))
        sys.settrace(self._on_call)
        threading.settrace(self._on_call)

    def stop(self) -> None:
        sys.settrace(None)
        threading.settrace(None)

    def _on_call(self, frame, event, arg):
        # the global trace function sees each new frame once; returning None asks for no line events
        f = frame.f_code.co_filename
        if f in self._waiting:
            if frame.f_code.co_name == "<module>":
                self.imported.add(f)
            else:
                self.imported.add(f)
                self.called.add(f)
                self._waiting.discard(f)
        return None

    def untouched(self) -> tuple[list[str], list[str]]:
        """(modules never imported, modules whose functions never ran), as paths relative to the repository."""
        rel = lambda f: str(Path(f).relative_to(ROOT))  # noqa: E731
        never = sorted(rel(f) for f in self.modules if f not in self.imported)
        idle = sorted(rel(f) for f, has_functions in self.modules.items()
                      if has_functions and f in self.imported and f not in self.called)
        return never, idle


def pytest_addoption(parser):
    parser.addoption("--touched-modules", action="store_true",
                     help="fail unless every chrombench module ran code in this process (see tests/touched_modules.py)")


WORKER_KEY = "chrombench_touched_modules"


def _is_xdist_controller(config) -> bool:
    """This process hands the tests to xdist workers and runs none itself."""
    return (getattr(config.option, "dist", "no") != "no" and bool(getattr(config.option, "tx", None))
            and not hasattr(config, "workerinput"))


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    if config.getoption("--touched-modules"):
        config._chrombench_tracker = Tracker(package_modules())
        if not _is_xdist_controller(config):  # the controller only adds up what its workers saw
            config._chrombench_tracker.start()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """An xdist worker finished: add what it saw to the controller's tracker."""
    tracker = getattr(node.config, "_chrombench_tracker", None)
    seen = getattr(node, "workeroutput", {}).get(WORKER_KEY)
    if tracker is not None and seen is not None:
        tracker.imported.update(seen["imported"])
        tracker.called.update(seen["called"])


def pytest_sessionfinish(session, exitstatus):
    tracker = getattr(session.config, "_chrombench_tracker", None)
    if tracker is None:
        return
    tracker.stop()
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller reports, on every worker's share
        session.config.workeroutput[WORKER_KEY] = {"imported": sorted(tracker.imported),
                                                   "called": sorted(tracker.called)}
        return
    never, idle = tracker.untouched()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    write = reporter.write_line if reporter else print
    n = len(tracker.modules)
    where = "the xdist workers" if _is_xdist_controller(session.config) else "this process"
    write(f"--touched-modules: {n - len(never) - len(idle)} of {n} package modules ran code in {where}")
    for path in never:
        write(f"  never imported: {path}")
    for path in idle:
        write(f"  imported, no function called: {path}")
    if (never or idle) and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
