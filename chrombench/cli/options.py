"""Options more than one command takes, declared once: the device, the suite (names from the task
registry, not a hand-kept list) and the seed-list syntax."""

from __future__ import annotations

import re

import click

DEVICES = ("auto", "cpu", "cuda")


def suite_names() -> list[str]:
    from ..tasks import all_suites

    return list(all_suites())


def device_option(default: str | None = "auto", help: str = "Where neural models compute; auto = CUDA when visible."):
    return click.option("--device", type=click.Choice(DEVICES), default=default, show_default=default is not None,
                        help=help)


def suite_option(default: str | None = None, extra: tuple[str, ...] = (), help: str = ""):
    return click.option("--suite", type=click.Choice([*extra, *suite_names()]), default=default,
                        show_default=default is not None,
                        help=help or "A suite of the task registry (`chrombench tasks suites`).")


def parse_seeds(text: str) -> list[int]:
    """``0-4`` | ``0,1,2`` | ``0-2,7`` -> distinct seeds in the order given."""
    seeds: list[int] = []
    for part in str(text).split(","):
        m = re.fullmatch(r"\s*(\d+)(?:-(\d+))?\s*", part)
        if not m:
            raise click.BadParameter(f"{text!r}: use a range like 0-4 or a list like 0,1,2", param_hint="'--seeds'")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise click.BadParameter(f"{part.strip()!r}: the range is empty", param_hint="'--seeds'")
        seeds += [s for s in range(lo, hi + 1) if s not in seeds]
    return seeds
