"""Toy models for the kill tests (not collected: no test_ prefix), loaded by path by a `chrombench run`
subprocess. ``SlowSave`` sleeps while its staging folder exists, so a test can kill a save half-way."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_toy_models import TinyLogistic  # noqa: E402


class SlowSave(TinyLogistic):
    name = "slow-save"

    def _save_state(self, directory: Path) -> dict:
        out = super()._save_state(directory)
        time.sleep(float(os.environ.get("KILL_TOY_SAVE_SLEEP", "0")))
        return out
