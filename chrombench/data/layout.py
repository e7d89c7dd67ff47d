"""Where the dataset cache keeps what, and which dataset names exist, all under ``CHROMBENCH_HOME``::

    $CHROMBENCH_HOME/registry.json                         imported, built and fetched datasets (catalog.py)
    $CHROMBENCH_HOME/datasets/<name>/<version>/<task>/     one folder per task (taskdir.py):
        task.json                                          sizes, label balance, hashes
        {train,valid,test}_{ids,X,y}.npy                   compact arrays, memory-mapped on load
        truth_{importance,latent}.npy                      simulated tasks only
    $CHROMBENCH_HOME/datasets/simremc/<version>+seed<k>[+<split>]/<task>/   the simulator's cache (simcache.py)

Every folder is built in a hidden staging folder beside its final place and renamed into it
(``chrombench.atomic``), so an interrupted or failed write leaves the cache as it was.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import ChrombenchError, UnknownNameError
from ..home import home

SIMREMC, REMC = "simremc", "remc"
BUILTIN_DATASETS = (SIMREMC, REMC)

NAME_RE = re.compile(r"\A[A-Za-z][A-Za-z0-9_.-]{0,63}\Z")  # \Z, not $: no trailing newline

# simremc versions that can be generated: version -> splits it offers. The default is what a bare
# `simremc` means; another is asked for as `simremc@1.2`, a split as `simremc@1.2:chromosome`.
SIMREMC_VERSIONS = {"1.1": ("random",), "1.2": ("random", "chromosome")}
SIMREMC_DEFAULT = "1.1"


def datasets_dir() -> Path:
    return home() / "datasets"


def registry_path() -> Path:
    return home() / "registry.json"


def validate_name(name: str) -> None:
    """A dataset name becomes a folder and a ``-t``/``--data`` value: it must not look like a task or
    a built-in dataset, so ``-t NAME`` can always mean it."""
    from ..tasks import all_specs

    if not NAME_RE.match(name):
        from ..safepath import quote

        raise ChrombenchError(f"dataset name {quote(name)} must start with a letter and use only letters, digits, '_', '.', "
                              "'-' (at most 64 characters)")
    if name in BUILTIN_DATASETS or name.upper() in all_specs():
        raise ChrombenchError(f"dataset name {name!r} is reserved; choose another --name")


def parse_simremc(dataset: str | None) -> tuple[str, str] | None:
    """``simremc[@VERSION][:SPLIT]`` -> (version, split); None for any other dataset name.

    An unknown version or a split the version does not offer is an error that lists what exists."""
    if dataset is None or not re.match(rf"^{SIMREMC}(?=$|[@:])", dataset):
        return None
    m = re.fullmatch(rf"{SIMREMC}(?:@([^:]*))?(?::(.*))?", dataset)
    version, split = (m.group(1) or SIMREMC_DEFAULT), (m.group(2) or "random")
    if version not in SIMREMC_VERSIONS:
        raise UnknownNameError(f"{dataset!r}: simremc has no version {version!r}; it has "
                               + ", ".join(f"{v}{' (default)' if v == SIMREMC_DEFAULT else ''}" for v in SIMREMC_VERSIONS)
                               + " (e.g. --data simremc@1.2)")
    if split not in SIMREMC_VERSIONS[version]:
        raise UnknownNameError(f"{dataset!r}: simremc {version} has no split {split!r}; it has "
                               + ", ".join(SIMREMC_VERSIONS[version]) + "; all versions: "
                               + "; ".join(f"{v}: {', '.join(sp)}" for v, sp in SIMREMC_VERSIONS.items())
                               + " (e.g. --data simremc@1.2:chromosome)")
    return version, split


def dataset_spec(name: str | None, version: str | None, split: str | None = None) -> str | None:
    """The dataset argument of ``load_task`` that gives back a record's data: simremc names its version
    and split where they are not the defaults (``simremc@1.2``, ``simremc@1.2:chromosome``), since a
    record stores them apart from the name; any other dataset is its name."""
    if name != SIMREMC or not version:
        return name
    base = str(version).split("+")[0]
    spec = SIMREMC if base == SIMREMC_DEFAULT else f"{SIMREMC}@{base}"
    return spec + (f":{split}" if split and split != "random" else "")


def record_dataset_spec(dataset: dict) -> str | None:
    """``dataset_spec`` of a result record's ``dataset`` block (its name, version and split)."""
    return dataset_spec(dataset.get("name"), dataset.get("version"), dataset.get("split"))


def simremc_version(seed: int = 0, version: str = SIMREMC_DEFAULT) -> str:
    return f"{version}+seed{seed}"


def simremc_dir(eid: str, seed: int, version: str, split: str) -> Path:
    """The cached simulated task's folder; the random split takes no suffix, so every cache already
    written is found where it is."""
    return datasets_dir() / SIMREMC / (simremc_version(seed, version) + ("" if split == "random" else f"+{split}")) / eid
