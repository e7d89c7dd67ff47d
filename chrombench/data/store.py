"""The dataset cache and the registry of datasets, all under ``CHROMBENCH_HOME``.

Layout::

    $CHROMBENCH_HOME/registry.json                         imported and fetched datasets
    $CHROMBENCH_HOME/datasets/<name>/<version>/<task>/     one folder per task:
        task.json                                          sizes, label balance, hashes
        {train,valid,test}_{ids,X,y}.npy                   compact arrays, memory-mapped on load
        truth_{importance,latent}.npy                      simulated tasks only

Every write goes to a temporary folder first and is renamed into place, so an interrupted or
failed import leaves the cache and the registry exactly as they were.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .. import MARKS
from ..atomic import atomic_write_text, swap_dir  # noqa: F401 - atomic_write_text: part of this module's API
from ..errors import ChrombenchError, DataFormatError, UnknownNameError
from ..home import home  # noqa: F401 - part of this module's API
from . import seal
from ..registry import suggest
from .arrays import SPLITS, DatasetRef, GroundTruth, Split, TaskData

SIMREMC, REMC = "simremc", "remc"
BUILTIN_DATASETS = (SIMREMC, REMC)

NAME_RE = re.compile(r"\A[A-Za-z][A-Za-z0-9_.-]{0,63}\Z")  # \Z, not $: no trailing newline


def datasets_dir() -> Path:
    return home() / "datasets"


# -- atomic file helpers --------------------------------------------------------------------------

def staging_dir(final: Path) -> Path:
    """A fresh temporary folder beside ``final`` (same file system, so rename is atomic)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.staging.", dir=final.parent))


def commit_dir(tmp: Path, final: Path, replace: bool = False) -> None:
    """Rename ``tmp`` to ``final``. If another process won the race, keep theirs."""
    if final.exists():
        if not replace:
            shutil.rmtree(tmp, ignore_errors=True)
            return
        swap_dir(tmp, final)
        return
    try:
        os.replace(tmp, final)
    except OSError:
        if not final.exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


# -- task folders -------------------------------------------------------------------------------

def task_hash(split_digests: dict[str, str]) -> str:
    return hashlib.sha256("".join(f"{s}:{split_digests[s]};" for s in SPLITS).encode()).hexdigest()


def write_task_dir(directory: Path, splits: dict[str, Split], truth: GroundTruth | None = None,
                   extra: dict | None = None) -> dict:
    """Write one task's arrays and ``task.json`` into ``directory`` (which must be a staging dir)."""
    first = splits[SPLITS[0]]
    meta = {"splits": {}, "marks": list(first.marks), "bins": first.shape[0], **(extra or {})}
    digests = {}
    for name in SPLITS:
        sp = splits[name]
        np.save(directory / f"{name}_ids.npy", np.asarray(sp.gene_ids).astype(str))
        np.save(directory / f"{name}_X.npy", np.ascontiguousarray(sp.X, dtype=np.int32))
        np.save(directory / f"{name}_y.npy", np.asarray(sp.y, dtype=np.int8))
        digests[name] = sp.digest()
        meta["splits"][name] = {"genes": len(sp), "positives": int(np.sum(sp.y)), "digest": digests[name]}
    meta["content_hash"] = task_hash(digests)
    if truth is not None:
        np.save(directory / "truth_importance.npy", truth.importance.astype(np.float16))
        np.save(directory / "truth_latent.npy", truth.latent.astype(np.float32))
        meta["oracle_auroc"] = truth.oracle_auroc
    (directory / "task.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    return meta


def read_task_dir(directory: Path) -> tuple[dict, dict[str, Split], GroundTruth | None]:
    directory = Path(directory)
    # the same seal as load_task, for a caller that comes here directly: by the resolved folder, then
    # (a copy somewhere else) by the test split's content
    seal.check_folder(directory, f"reading {directory}")
    try:
        meta = json.loads((directory / "task.json").read_text())
        if not isinstance(meta, dict) or not isinstance(meta.get("content_hash"), str):
            raise ValueError("not a task description")
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ChrombenchError(f"{directory / 'task.json'} is damaged ({str(exc)[:200]}); import or fetch the "
                              "dataset again (--overwrite / --force)") from exc
    marks = tuple(meta.get("marks", MARKS))  # task folders written before marks were recorded are the archive's
    splits = {}
    for name in SPLITS:
        splits[name] = Split(
            gene_ids=np.load(directory / f"{name}_ids.npy"),
            X=np.load(directory / f"{name}_X.npy", mmap_mode="r"),
            y=np.load(directory / f"{name}_y.npy"), marks=marks)
    seal.check_split(splits["test"].digest, f"reading {directory}")
    truth = None
    if (directory / "truth_importance.npy").exists():
        mech = directory / "truth_mechanisms.npz"
        truth = GroundTruth(oracle_auroc=meta["oracle_auroc"],
                            importance=np.load(directory / "truth_importance.npy", mmap_mode="r"),
                            latent=np.load(directory / "truth_latent.npy"),
                            mechanisms=MechanismMaps(mech) if mech.exists() else None)
    return meta, splits, truth


# -- the registry of imported/fetched datasets ------------------------------------------------------

def registry_path() -> Path:
    return home() / "registry.json"


def read_registry() -> dict:
    path = registry_path()
    if not path.exists():
        return {"datasets": {}}
    try:
        reg = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ChrombenchError(f"{path} is corrupt ({type(exc).__name__}: {str(exc)[:200]}); move it away to start a "
                              "fresh registry") from exc
    _check_registry(path, reg)
    return reg


REGISTRY_FIELDS = {"version": str, "path": str, "tasks": dict}


def _check_registry(path: Path, reg) -> None:
    """Every entry has what loading a task needs; a clear error names the entry and the field."""
    datasets = reg.get("datasets") if isinstance(reg, dict) else None
    if not isinstance(datasets, dict):
        raise ChrombenchError(f"{path}: no 'datasets' object; move the file away to start a fresh registry")
    for name, entry in datasets.items():
        if not isinstance(entry, dict):
            raise ChrombenchError(f"{path}: dataset {name!r} is not an object; re-import it (--overwrite)")
        for key, kind in REGISTRY_FIELDS.items():
            if not isinstance(entry.get(key), kind):
                raise ChrombenchError(f"{path}: dataset {name!r} lacks a valid {key!r} field; re-import it with "
                                      f"`chrombench data import PATH --name {name} --overwrite` (or fetch it again)")


def write_registry(reg: dict) -> None:
    atomic_write_text(registry_path(), json.dumps(reg, indent=2, sort_keys=True))


@contextlib.contextmanager
def registry_transaction():
    """Read, change and write ``registry.json`` under an exclusive lock: two imports (or an import and a
    fetch) finishing at once would otherwise each write back what they read, and one dataset would vanish."""
    lock = home() / "registry.json.lock"
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            reg = read_registry()
            yield reg
            write_registry(reg)
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def register_dataset(entry: dict) -> None:
    with registry_transaction() as reg:
        reg["datasets"][entry["name"]] = entry


def dataset_hash(task_hashes: dict[str, str], named_after_dataset: bool = False) -> str:
    """The dataset hash: sha256 over its tasks' names and task hashes (a task hash covers the task's
    arrays). ``named_after_dataset``: the one task is called after the dataset itself (``-t NAME``), so
    its name is left out and the same arrays imported or built under two names have one hash."""
    if named_after_dataset:
        (only,) = task_hashes.values()
        return hashlib.sha256(f":{only};".encode()).hexdigest()
    return hashlib.sha256("".join(f"{t}:{h};" for t, h in sorted(task_hashes.items())).encode()).hexdigest()


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def validate_name(name: str) -> None:
    from ..tasks import all_specs

    if not NAME_RE.match(name):
        from ..safepath import quote

        raise ChrombenchError(f"dataset name {quote(name)} must start with a letter and use only letters, digits, '_', '.', "
                              "'-' (at most 64 characters)")
    if name in BUILTIN_DATASETS or name.upper() in all_specs():
        raise ChrombenchError(f"dataset name {name!r} is reserved; choose another --name")


# -- importing a dataset in the archive layout ----------------------------------------------------

def find_task_folders(path: Path) -> dict[str, Path]:
    """``PATH/{train,valid,test}.csv`` (one task) or ``PATH/<task>/classification/*.csv`` (many)."""
    if all((path / f"{s}.csv").is_file() for s in SPLITS):
        return {"": path}
    found = {}
    for sub in sorted(p for p in path.iterdir() if p.is_dir()) if path.is_dir() else []:
        cls = sub / "classification"
        if cls.is_dir():
            found[sub.name] = cls
    if not found:
        raise DataFormatError(
            f"{path}: no dataset found; expected either {path}/{{train,valid,test}}.csv (one task) or "
            f"{path}/<EID>/classification/{{train,valid,test}}.csv (many tasks)")
    return found


def parse_task_folder(folder: Path) -> dict[str, Split]:
    from .csvformat import check_disjoint, read_split

    splits = {}
    for s in SPLITS:
        f = folder / f"{s}.csv"
        if not f.is_file():
            raise DataFormatError(f"{f}: missing split file")
        splits[s] = read_split(f)
    check_disjoint(splits, {s: str(folder / f"{s}.csv") for s in SPLITS})
    return splits


def import_dataset(path: str | os.PathLike, name: str, *, version: str = "1", overwrite: bool = False,
                   source: str | None = None, progress=None) -> dict:
    """Validate every split of every task, then register the dataset atomically.

    Nothing is written to the registry or the cache unless every file parses.
    """
    from ..safepath import identifier

    path = Path(path)
    validate_name(name)
    identifier(version, "dataset version")
    reg = read_registry()
    if name in reg["datasets"] and not overwrite:
        raise ChrombenchError(f"dataset {name!r} is already registered; pass --overwrite to replace it")
    folders = find_task_folders(path)
    for task in folders:
        if task:
            identifier(task, f"task folder name in {path}")
    items = list(folders.items())

    def parsed():
        for task, folder in (progress(items) if progress else items):
            yield task or name, parse_task_folder(folder), {"origin": str(folder.resolve())}

    return save_dataset(name, version, parsed(), source=source or f"import:{path.resolve()}",
                        overwrite=overwrite, extra={"single_task": list(folders) == [""]})


def save_dataset(name: str, version: str, tasks, *, source: str, overwrite: bool = False,
                 extra: dict | None = None) -> dict:
    """Write tasks (``{task: (splits, task.json extras)}`` or an iterable of ``(task, splits, extras)``)
    into the store and register them as dataset ``name``: staged, then renamed into place, so a
    failure (a bad file, Ctrl-C) leaves the cache and the registry exactly as they were."""
    from ..safepath import identifier, under

    validate_name(name)
    identifier(version, "dataset version")
    reg = read_registry()
    if name in reg["datasets"] and not overwrite:
        raise ChrombenchError(f"dataset {name!r} is already registered; pass --overwrite to replace it")
    items = ((t, sp, ex) for t, (sp, ex) in tasks.items()) if isinstance(tasks, dict) else tasks
    final = under(datasets_dir(), name, version, kind="dataset name or version")
    new_dirs = [d for d in (datasets_dir(), final.parent) if not d.exists()]  # staging_dir creates them
    stage = staging_dir(final)
    try:
        written = {}
        for task_name, splits, task_extra in items:
            identifier(task_name, "task name")
            tdir = stage / task_name
            tdir.mkdir()
            written[task_name] = write_task_dir(tdir, splits, extra=task_extra)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        for d in reversed(new_dirs):  # no empty datasets/<name>/ left behind: the cache is as it was
            try:
                d.rmdir()
            except OSError:
                pass
        raise
    commit_dir(stage, final, replace=True)
    entry = {
        "name": name, "version": version, "source": source, "created": now(), "path": str(final),
        "single_task": len(written) == 1, **(extra or {}),
        "tasks": {t: {"content_hash": m["content_hash"], "splits": m["splits"]} for t, m in written.items()},
        "unavailable": {},
    }
    entry["content_hash"] = dataset_hash({t: m["content_hash"] for t, m in written.items()},
                                         named_after_dataset=bool(entry["single_task"]) and list(written) == [name])
    register_dataset(entry)
    previous = reg["datasets"].get(name, {}).get("path")
    if previous and Path(previous) != final and Path(previous).parent == final.parent:
        from ..safepath import remove_tree

        remove_tree(Path(previous), final.parent)  # --overwrite with a new --version: drop the old arrays
    return entry


def remove_dataset(name: str) -> dict:
    """Unregister dataset ``name`` and delete its arrays; returns the entry it had. The registry is
    rewritten atomically under its lock with the folder already moved aside, so a failure at any point
    leaves either the dataset whole and registered or gone from both (a moved-aside folder is hidden
    and holds nothing registered)."""
    from ..safepath import is_inside, remove_tree

    if name == SIMREMC:
        raise ChrombenchError(f"{SIMREMC} is the built-in simulator, generated on first use: it cannot be removed "
                              f"(its cache is {datasets_dir() / SIMREMC}; deleting that folder only makes the "
                              "tasks be generated again)")
    with registry_transaction() as reg:
        if name not in reg["datasets"]:
            if not reg["datasets"]:
                raise UnknownNameError(f"no dataset named {name!r}: none is registered in {registry_path()} (imported, "
                                       "built or fetched ones can be removed; `chrombench data list` shows them)")
            raise UnknownNameError(suggest(name, list(reg["datasets"]), "dataset")
                                   + " (`chrombench data list` shows them)")
        entry = reg["datasets"].pop(name)
        folder = Path(entry["path"])
        aside = None
        if folder.exists() and is_inside(folder, datasets_dir()) and folder.resolve() != datasets_dir().resolve():
            aside = folder.with_name(f".{folder.name}.removing.{os.getpid()}")
            os.replace(folder, aside)
        try:
            write_registry(reg)
        except BaseException:
            if aside is not None:
                os.replace(aside, folder)
            raise
    if aside is not None:
        remove_tree(aside, datasets_dir())
        try:
            aside.parent.rmdir()  # datasets/<name>/ once its last version is gone
        except OSError:
            pass
    return entry


# -- simulated tasks --------------------------------------------------------------------------------

# simremc versions that can be generated: version -> splits it offers. The default is what a bare
# `simremc` means; another is asked for as `simremc@1.2`, a split as `simremc@1.2:chromosome`.
SIMREMC_VERSIONS = {"1.1": ("random",), "1.2": ("random", "chromosome")}
SIMREMC_DEFAULT = "1.1"


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


def simremc_version(seed: int = 0, version: str = SIMREMC_DEFAULT) -> str:
    return f"{version}+seed{seed}"


def _simremc_dir(eid: str, seed: int, version: str, split: str) -> Path:
    return datasets_dir() / SIMREMC / (simremc_version(seed, version) + ("" if split == "random" else f"+{split}")) / eid


def ensure_simulated(eid: str, seed: int = 0, version: str = SIMREMC_DEFAULT, split: str = "random") -> Path:
    """Generate (once) and cache the simulated task ``eid``; returns its folder."""
    from ..tasks import get_spec

    spec = get_spec(eid)
    parse_simremc(f"{SIMREMC}@{version}:{split}")  # raises, listing what exists
    final = _simremc_dir(eid, seed, version, split)
    if (final / "task.json").exists():
        return final
    args = (eid, spec.group, spec.esc_like, spec.reported_deepchrome_auroc)
    positions = None
    if version == "1.1":
        from .simulate import simulate_task

        splits, truth = simulate_task(*args, seed=seed)
    else:
        from .simulate12 import simulate_task as simulate12

        splits, truth, positions = simulate12(*args, seed=seed, split=split)
    stage = staging_dir(final)
    try:
        extra = {"simulated": True, "seed": seed}
        if version != "1.1":  # 1.1's task.json stays byte for byte as shipped
            extra.update(simremc_version=version, split=split)
        write_task_dir(stage, splits, truth, extra=extra)
        if positions is not None:
            np.savez(stage / "positions.npz", **{f"{s}_{k}": v for s, p in positions.items() for k, v in p.items()})
        if truth.mechanisms:
            np.savez_compressed(stage / "truth_mechanisms.npz",
                                **{k: v.astype(np.float16) for k, v in truth.mechanisms.items()})
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    commit_dir(stage, final)
    return final


class MechanismMaps(dict):
    """Mechanism name -> [n_test, marks, bins] planted map, read from the cache on first use (they are
    large and only interpretation scoring needs them); ``rows`` picks a subsample's test genes."""

    def __init__(self, path: Path, rows: np.ndarray | None = None):
        super().__init__()
        self._path, self._rows = Path(path), rows
        with np.load(self._path) as z:
            self._names = list(z.files)

    def __missing__(self, name):
        if name not in self._names:
            raise UnknownNameError(f"no planted mechanism {name!r}; this task has: {', '.join(self._names)}")
        with np.load(self._path) as z:
            arr = z[name] if self._rows is None else z[name][self._rows]
        self[name] = arr
        return arr

    def __iter__(self):
        return iter(self._names)

    def __len__(self):
        return len(self._names)

    def keys(self):
        return list(self._names)

    def items(self):
        return [(k, self[k]) for k in self._names]

    def subset(self, rows: np.ndarray) -> "MechanismMaps":
        return MechanismMaps(self._path, rows if self._rows is None else self._rows[rows])


def task_folders(dataset: str, task: str) -> list[Path]:
    """Where the store keeps ``dataset/task`` (every simulator version for simremc), for the seal."""
    if dataset == SIMREMC:
        root = datasets_dir() / SIMREMC
        return sorted(p / task for p in root.iterdir() if (p / task).is_dir()) if root.is_dir() else []
    try:
        entry = read_registry()["datasets"].get(dataset)
    except ChrombenchError:
        return []
    return [Path(entry["path"]) / task] if entry and (Path(entry["path"]) / task).is_dir() else []


# -- resolving names and loading tasks ----------------------------------------------------------------

def normalise_eid(name: str) -> str | None:
    from ..tasks import all_specs

    m = re.fullmatch(r"[eE]0*(\d{1,3})", name)
    if m:
        eid = f"E{int(m.group(1)):03d}"
        if eid in all_specs():
            return eid
    return None


def resolve_task(ref: str, dataset: str | None = None) -> tuple[str, str]:
    """``E003`` | ``NAME`` (an imported one-task dataset) | ``NAME/TASK`` -> (dataset, task)."""
    reg = read_registry()["datasets"]
    if "/" in ref:
        ds, task = ref.split("/", 1)
        return ds, task
    # simremc@VERSION[:SPLIT] (raises on what does not exist); plain "simremc" goes on below, where
    # -t NAME may still mean an imported one-task dataset
    if dataset != SIMREMC and parse_simremc(dataset):
        ds = dataset
        eid = normalise_eid(ref)
        if eid:
            return ds, eid
        from ..tasks import all_specs

        raise UnknownNameError(suggest(ref, list(all_specs()), "task"))
    if dataset is not None and dataset not in BUILTIN_DATASETS and dataset not in reg:
        raise UnknownNameError(suggest(dataset, list(BUILTIN_DATASETS) + list(reg), "dataset")
                               + "; `chrombench data list` shows them, `chrombench data import PATH --name NAME` adds one")
    # an imported dataset's name is never an EID or a built-in name (validate_name), so -t NAME means it
    # even beside the default --data simremc
    if ref in reg and dataset in (None, ref, SIMREMC):
        tasks = list(reg[ref]["tasks"])
        if len(tasks) == 1:
            return ref, tasks[0]
        raise UnknownNameError(f"dataset {ref!r} has {len(tasks)} tasks; name one as {ref}/<task> "
                               f"(e.g. {ref}/{tasks[0]}) or pass --data {ref} -t <task>")
    eid = normalise_eid(ref)
    ds = dataset or SIMREMC
    if eid and (ds in BUILTIN_DATASETS or eid in reg.get(ds, {}).get("tasks", {})):
        return ds, eid
    if ds in reg and ref in reg[ds]["tasks"]:
        return ds, ref
    from ..tasks import all_specs

    choices = list(all_specs()) + [n for n in reg if len(reg[n]["tasks"]) == 1]
    if ds in reg:
        choices += list(reg[ds]["tasks"])
    raise UnknownNameError(suggest(ref, choices, "task"))


def subsample(data: TaskData, genes: dict, seed: int = 0) -> TaskData:
    """A label-stratified, deterministic subsample of each split (the quick suite's genes)."""
    picked = {}
    for name in SPLITS:
        sp = data.split(name)
        n = min(int(genes[name]), len(sp))
        rng = np.random.default_rng([seed, int(hashlib.sha1(f"{data.task}/{name}".encode()).hexdigest()[:8], 16)])
        pos, neg = np.flatnonzero(sp.y == 1), np.flatnonzero(sp.y == 0)
        n_pos = int(round(n * len(pos) / len(sp)))
        idx = np.sort(np.r_[rng.choice(pos, n_pos, replace=False), rng.choice(neg, n - n_pos, replace=False)])
        picked[name] = idx
    splits = {s: data.split(s).subset(picked[s]) for s in SPLITS}
    truth = None
    if data.truth is not None:
        from ..evaluate import auroc

        t = picked["test"]
        mech = data.truth.mechanisms
        truth = GroundTruth(oracle_auroc=auroc(splits["test"].y, data.truth.latent[t]),
                            importance=np.asarray(data.truth.importance[t]), latent=data.truth.latent[t],
                            mechanisms=mech.subset(t) if isinstance(mech, MechanismMaps)
                            else {k: v[t] for k, v in mech.items()} if mech else None)
    h = task_hash({s: splits[s].digest() for s in SPLITS})
    ref = DatasetRef(name=data.dataset.name, version=data.dataset.version, content_hash=h,
                     simulated=data.dataset.simulated, split=data.dataset.split)
    return TaskData(task=data.task, dataset=ref, truth=truth, **splits)


def load_task(task: str, dataset: str | None = None, *, quick: bool = False, genes: dict | None = None,
              seed: int = 0) -> TaskData:
    """Load one task as arrays. ``quick`` subsamples genes as the quick suite does."""
    ds, name = resolve_task(task, dataset)
    seal.check(ds, name, f"load_task({task!r})")
    sim = parse_simremc(ds)
    if sim:
        directory = ensure_simulated(name, seed, *sim)
        version, simulated = simremc_version(seed, sim[0]), True
    else:
        reg = read_registry()["datasets"]
        if ds not in reg:
            if ds == REMC:
                raise ChrombenchError(
                    f"the real REMC archive has not been fetched yet; run `chrombench data fetch --tasks {name}` "
                    f"(needs network) or import a copy with `chrombench data import PATH --name NAME`")
            raise UnknownNameError(suggest(ds, list(BUILTIN_DATASETS) + list(reg), "dataset"))
        entry = reg[ds]
        if name in entry.get("unavailable", {}):
            raise ChrombenchError(f"task {name} of dataset {ds!r} is unavailable: {entry['unavailable'][name]}")
        if name not in entry["tasks"]:
            raise UnknownNameError(suggest(name, list(entry["tasks"]), f"task of dataset {ds!r}"))
        directory = Path(entry["path"]) / name
        version, simulated = entry["version"], False
    meta, splits, truth = read_task_dir(directory)
    ds_name = SIMREMC if sim else ds  # simremc@1.2 is simremc at version 1.2+seedN
    split = None if sim and sim[1] == "random" else meta.get("split")  # random thirds: as every record before
    data = TaskData(task=name, dataset=DatasetRef(ds_name, version, meta["content_hash"], simulated, split),
                    truth=truth, **splits)
    if quick or genes:
        if genes is None:
            from ..tasks import get_suite

            genes = get_suite("quick").genes
        data = subsample(data, genes)
    return data


def dataset_info(name: str) -> dict:
    """What ``chrombench data info`` shows: genes per split, balance, source, version, hash, path."""
    reg = read_registry()["datasets"]
    sim = parse_simremc(name)
    if sim:
        from ..tasks import all_specs

        root = _simremc_dir("x", 0, *sim).parent
        # only committed tasks: a generation in progress (or killed) leaves a hidden staging folder
        cached = sorted(p.name for p in root.iterdir() if not p.name.startswith(".")
                        and (p / "task.json").is_file()) if root.exists() else []
        tasks = {}
        for t in cached:
            meta = json.loads((root / t / "task.json").read_text())
            tasks[t] = {"content_hash": meta["content_hash"], "splits": meta["splits"],
                        "oracle_auroc": meta.get("oracle_auroc")}
        return {"name": SIMREMC, "version": simremc_version(0, sim[0]), "source": "simulated (chrombench.data.simulate"
                + ("" if sim[0] == "1.1" else "12") + ")",
                "path": str(root), "simulated": True, "n_tasks": len(all_specs()), "tasks": tasks,
                "note": f"{len(cached)} of {len(all_specs())} tasks generated and cached so far; the rest are "
                        "generated on first use"}
    if name not in reg:
        if name == REMC:
            raise ChrombenchError("the real REMC archive has not been fetched yet; run `chrombench data fetch "
                                  "--tasks E003` (or --all; needs network)")
        raise UnknownNameError(suggest(name, list(BUILTIN_DATASETS) + list(reg), "dataset"))
    return dict(reg[name])
