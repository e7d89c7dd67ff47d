"""The task registry: one declarative TOML spec per Roadmap cell type (tasks/*.toml) and suites.

Specs are shipped as package data of ``chrombench.taskspecs`` (the repository's ``tasks/``
folder), parsed into frozen dataclasses, and validated on load so that a malformed spec fails
loudly with its file name.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from importlib import resources

from .errors import ChrombenchError
from .registry import suggest
from .errors import UnknownNameError


@dataclass(frozen=True)
class Reported:
    """A published figure on the real REMC data (never mixed with measured results)."""

    model: str
    test_auroc: float
    citation: str


@dataclass(frozen=True)
class TaskSpec:
    eid: str
    name: str
    group: str
    sample_type: str
    esc_like: bool
    split_sizes: dict  # {"train": 6601, "valid": 6601, "test": 6600}
    source_record: int
    source_path: str
    checksums: dict  # file name -> md5, when known
    weights_file: str
    reported: tuple[Reported, ...] = field(default=())

    @property
    def reported_deepchrome_auroc(self) -> float | None:
        for r in self.reported:
            if r.model == "deepchrome":
                return r.test_auroc
        return None

    def as_dict(self) -> dict:
        return {
            "eid": self.eid, "name": self.name, "group": self.group, "sample_type": self.sample_type,
            "esc_like": self.esc_like, "splits": dict(self.split_sizes),
            "source": {"zenodo_record": self.source_record, "path": self.source_path,
                       "checksums": dict(self.checksums)},
            "weights_file": self.weights_file,
            "reported": [{"model": r.model, "test_auroc": r.test_auroc, "citation": r.citation}
                         for r in self.reported],
        }


HYPERPARAMETERS = ("tuned", "fixed")


@dataclass(frozen=True)
class Suite:
    """A named set of tasks and the protocol a result on it follows.

    ``hyperparameters``: ``tuned`` (Optuna per model and task) or ``fixed`` (each model's declared
    defaults held across every task, as the AttentiveChrome paper did, so that a 56-task table costs
    one fit per task and seed). ``seeds`` are the final fits' seeds on every task, ``dev_seeds`` those
    on the development tasks (``dev_tasks``), where more seeds measure the seed-to-seed spread.
    """

    name: str
    description: str
    tasks: tuple[str, ...]
    genes: dict | None  # per-split subsample sizes, or None for full size
    hyperparameters: str = "tuned"
    seeds: tuple[int, ...] = (0, 1, 2)
    dev_tasks: tuple[str, ...] = ()
    dev_seeds: tuple[int, ...] = ()
    models: tuple[str, ...] = ()  # what `chrombench run --suite NAME` runs without -m (empty: the whole zoo)

    @property
    def fixed(self) -> bool:
        return self.hyperparameters == "fixed"

    def seeds_for(self, task: str) -> list[int]:
        """The seeds a result on ``task`` needs under this suite's protocol."""
        return list(self.dev_seeds if task in self.dev_tasks and self.dev_seeds else self.seeds)


def _parse_spec(fname: str, doc: dict) -> TaskSpec:
    try:
        reported = tuple(
            Reported(model=m, test_auroc=float(v["test_auroc"]), citation=str(v["citation"]))
            for m, v in doc.get("reported", {}).items())
        spec = TaskSpec(
            eid=doc["eid"], name=doc["name"], group=doc["group"], sample_type=doc["sample_type"],
            esc_like=bool(doc["esc_like"]),
            split_sizes={k: int(doc["splits"][k]) for k in ("train", "valid", "test")},
            source_record=int(doc["source"]["zenodo_record"]), source_path=doc["source"]["path"],
            checksums=dict(doc["source"].get("checksums", {})), weights_file=doc["weights"]["file"],
            reported=reported)
    except (KeyError, TypeError, ValueError) as exc:
        raise ChrombenchError(f"task spec {fname}: missing or invalid field {exc}") from exc
    if fname != f"{spec.eid}.toml":
        raise ChrombenchError(f"task spec {fname} declares eid {spec.eid!r}; the file must be named {spec.eid}.toml")
    return spec


@functools.lru_cache(maxsize=1)
def all_specs() -> dict[str, TaskSpec]:
    """EID -> TaskSpec for the 56 tasks, in EID order."""
    specs = {}
    for entry in sorted(resources.files("chrombench.taskspecs").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".toml") and entry.name != "suites.toml":
            spec = _parse_spec(entry.name, tomllib.loads(entry.read_text()))
            specs[spec.eid] = spec
    return specs


@functools.lru_cache(maxsize=1)
def all_suites() -> dict[str, Suite]:
    doc = tomllib.loads(resources.files("chrombench.taskspecs").joinpath("suites.toml").read_text())
    specs = all_specs()
    suites = {}
    for name, s in doc.items():
        tasks = tuple(specs) if s["tasks"] == "all" else tuple(s["tasks"])
        for t in tasks:
            if t not in specs:
                raise ChrombenchError(f"suite {name!r} in suites.toml names unknown task {t!r}")
        try:
            suite = Suite(name=name, description=s.get("description", ""), tasks=tasks, genes=s.get("genes"),
                          hyperparameters=str(s.get("hyperparameters", "tuned")),
                          seeds=tuple(int(x) for x in s.get("seeds", (0, 1, 2))),
                          dev_tasks=tuple(s.get("dev_tasks", ())), dev_seeds=tuple(int(x) for x in s.get("dev_seeds", ())),
                          models=tuple(str(m) for m in s.get("models", ())))
        except (TypeError, ValueError) as exc:
            raise ChrombenchError(f"suite {name!r} in suites.toml: invalid field ({exc})") from exc
        if suite.hyperparameters not in HYPERPARAMETERS:
            raise ChrombenchError(f"suite {name!r} in suites.toml: hyperparameters must be one of {HYPERPARAMETERS}, "
                                  f"not {suite.hyperparameters!r}")
        if not suite.seeds or any(t not in tasks for t in suite.dev_tasks):
            raise ChrombenchError(f"suite {name!r} in suites.toml: needs seeds, and dev_tasks must be among its tasks")
        suites[name] = suite
    return suites


def get_spec(eid: str) -> TaskSpec:
    specs = all_specs()
    if eid not in specs:
        raise UnknownNameError(suggest(eid, list(specs), "task"))
    return specs[eid]


def get_suite(name: str) -> Suite:
    suites = all_suites()
    if name not in suites:
        raise UnknownNameError(suggest(name, list(suites), "suite"))
    return suites[name]
