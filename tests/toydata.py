"""The shared real 30-gene sample, found beside the checkout (as in CI), for every test module."""

import os
from pathlib import Path

from chrombench.data.arrays import Split

SHARED_DATA = Path(os.environ.get("CHROMBENCH_SHARED_DATA",
                                  Path(__file__).resolve().parents[2] / "shared" / "data"))
TOY = SHARED_DATA / "attentivechrome-toy"


def read_toy(split: str) -> Split:
    from chrombench.data.csvformat import read_split

    return read_split(TOY / f"{split}.csv")
