"""Where chrombench keeps its files: ``$CHROMBENCH_HOME``, else the platform's user cache folder.

The one place it is resolved. It sits below every room, since the dataset cache and the native
kernels' build folder both live there and neither layer may reach into the other for it.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """``$CHROMBENCH_HOME`` or the platform's user cache folder (created if missing)."""
    env = os.environ.get("CHROMBENCH_HOME")
    if env:
        path = Path(env).expanduser()
    else:
        import platformdirs

        path = Path(platformdirs.user_cache_dir("chrombench"))
    path.mkdir(parents=True, exist_ok=True)
    return path
