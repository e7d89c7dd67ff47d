"""From result records to leaderboard sections: grouping, statistics and confidence intervals.

Only result records (JSON) are read; nothing here imports the engine or the models. Records that
fail ``results.problems`` (schema violation, digest mismatch) are left out and listed, never shown.
Results are grouped into one ``Section`` per (dataset name, version, gene subsample): simulated and
real numbers, two versions of a dataset, or a quick-suite subsample and the full task are never
ranked together. Within a section every task must be the same data for every model (its content
hash); a record measured on other data is left out and listed.
"""

from __future__ import annotations

import math
import shlex
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import results
from . import stats
from . import uptake as mechanism_uptake

REFERENCE_MODEL = "deepchrome"  # "wins" are counted against it, as in the AttentiveChrome paper
CI_BOOTSTRAP = "bootstrap over test genes"
CI_SEEDS = "t-interval over seeds"
OUTSIDE_ENGINE = "predictions from outside the engine: no code travels with them, so they cannot be rebuilt"


@dataclass
class Cell:
    """One (model, task): test AUROC over seeds and where it came from."""

    model: str
    task: str
    values: list[float]
    seeds: list[int]
    ci: tuple[float, float] = (math.nan, math.nan)
    ci_method: str | None = None
    oracle: float | None = None
    record: dict = field(default_factory=dict, repr=False)

    @property
    def training(self) -> dict:
        t = self.record.get("training")
        return t if isinstance(t, dict) else {}

    @property
    def unconverged(self) -> int:
        """Seeds of this cell whose fit stopped while still improving (cap, time) or diverged."""
        t = self.training
        n = int(t["n_unconverged"]) if "n_unconverged" in t else int(t.get("converged") is False)
        # records written before "stalled" existed call such a fit converged ("patience")
        return n + len(self.legacy_stalled())

    def legacy_stalled(self) -> list[int]:
        stops = self.training.get("stopped_by")
        stops = stops if isinstance(stops, list) else [stops]
        return [k for k in results.stalled_seeds(self.training) if k < len(stops) and stops[k] == "patience"]

    def stop_reasons(self) -> list[str]:
        """How each seed's fit ended, with a legacy record's stalled fits called what they are."""
        stops = self.training.get("stopped_by", [])
        stops = list(stops) if isinstance(stops, list) else [stops]
        for k in self.legacy_stalled():
            stops[k] = "stalled"
        return stops

    @property
    def compute_s(self) -> float:
        """Seconds this cell cost: tuning trials plus every seed's fit (from the records)."""
        tuned = float(self.record.get("tuning", {}).get("elapsed_s", 0.0) or 0.0)
        return tuned + float(self.record.get("fit_time_s", 0.0) or 0.0) * max(1, len(self.values))

    @property
    def mean(self) -> float:
        return stats.mean_std(self.values)[0]

    @property
    def std(self) -> float:
        return stats.mean_std(self.values)[1]

    def metric_mean(self, key: str) -> float:
        m = self.record.get("metrics", {}).get(key)
        return float(m["mean"]) if isinstance(m, dict) and "mean" in m else math.nan


@dataclass
class Section:
    dataset: str
    version: str
    genes: dict | None  # the per-split gene subsample of every task (None: full size)
    simulated: bool
    models: list[str]  # best first
    tasks: list[str]
    cells: dict[tuple[str, str], Cell]
    matrix: np.ndarray  # models x tasks mean test AUROC, NaN where missing
    oracle: dict[str, float | None]
    complete_tasks: list[str]  # tasks every model has: the blocks of the rank tests
    per_model: dict[str, dict]  # describe() over each model's own tasks
    avg_ranks: dict[str, float]
    friedman: stats.Friedman | None
    cd: float
    wilcoxon: dict[str, tuple[float, float]]  # model -> (raw p, Holm p) vs the top model
    wins: dict[str, tuple[int, int]]  # model -> (wins, tasks) vs REFERENCE_MODEL
    suites: list[str]
    seeds: list[int]
    families: dict[str, str]
    targets: dict[str, str]  # model name -> what `chrombench run -m` takes (zoo name or file:Class)
    n_parameters: dict[str, int]
    ci_methods: list[str]
    # (model, task) -> {method: {measure: value}} from the seed record that carries it (seed 0, simulated)
    interpretation: dict[tuple[str, str], dict] = field(default_factory=dict)
    # (model, task) -> {method: {mechanism: {cell_auroc, genes}}} where the simulator plants mechanisms (1.2 on)
    mechanisms: dict[tuple[str, str], dict] = field(default_factory=dict)
    # (model, task) -> {mechanism: uptake of its predictions, mean over seeds} (1.2 on; leaderboard.uptake)
    uptake: dict[tuple[str, str], dict] = field(default_factory=dict)
    content_hashes: dict[str, str] = field(default_factory=dict)  # task -> the dataset content hash
    split: str | None = None  # "random"/"chromosome" for a `data build` dataset; None: the archive's thirds
    outside: set[str] = field(default_factory=set)  # models whose records are predictions from outside the engine

    @property
    def content_hash(self) -> str:
        """One hash for the section's data: sha256 over the sorted ``task:hash`` lines of its tasks."""
        import hashlib

        lines = "\n".join(f"{t}:{h}" for t, h in sorted(self.content_hashes.items()))
        return hashlib.sha256(lines.encode()).hexdigest()

    def fits(self, model: str) -> dict:
        """How ``model``'s fits ended over the section: seeds fitted, unconverged, stop reasons, compute."""
        cells = [c for (m, _), c in self.cells.items() if m == model]
        stops: dict[str, int] = {}
        for c in cells:
            for r in c.stop_reasons():
                stops[r] = stops.get(r, 0) + 1
        return {"fits": sum(len(c.values) for c in cells), "unconverged": sum(c.unconverged for c in cells),
                "stopped_by": dict(sorted(stops.items(), key=lambda kv: -kv[1])),
                "compute_s": sum(c.compute_s for c in cells)}

    @property
    def key(self) -> str:
        return f"{self.dataset} {self.version}" + (f" {genes_label(self.genes)}" if self.genes else "")

    @property
    def top(self) -> str | None:
        return self.models[0] if self.models else None

    @property
    def data_spec(self) -> str:
        """What `chrombench run --data` takes for this section's data (``simremc@1.2`` for simulator 1.2)."""
        from ..data.layout import dataset_spec

        return dataset_spec(self.dataset, self.version)

    def reproduce(self) -> str:
        """The `chrombench run` command that produces this section's results (inferred)."""
        from ..models.registry import MODELS

        engine = [m for m in self.models if m not in self.outside]  # the others cannot be rebuilt
        if self.outside and not engine:
            return f"(none: {OUTSIDE_ENGINE})"
        parts = ["chrombench run"]
        if len(self.suites) == 1:
            parts.append(f"--suite {self.suites[0]}")
        else:
            parts += [f"-t {t}" for t in self.tasks]
            if self.genes:
                parts.append("--genes " + ",".join(str(self.genes[s]) for s in ("train", "valid", "test")))
        if self.data_spec != "simremc":
            parts.append(f"--data {self.data_spec}")
        if sorted(engine) != sorted(MODELS.names()) or len(self.suites) != 1:
            parts += [f"-m {shlex.quote(self._model_ref(m, MODELS))}" for m in engine]
        if self.seeds and not self._suite_seeds():
            s = self.seeds
            contiguous = s == list(range(s[0], s[-1] + 1))
            parts.append(f"--seeds {s[0]}-{s[-1]}" if contiguous and len(s) > 1 else f"--seeds {','.join(map(str, s))}")
        return " ".join(parts)

    def _suite_seeds(self) -> bool:
        """Every cell has exactly the seeds its suite's protocol gives it (then --seeds is left out)."""
        from ..tasks import get_suite

        if len(self.suites) != 1:
            return False
        try:
            suite = get_suite(self.suites[0])
        except Exception:  # a suite this chrombench does not know
            return False
        return all(sorted(c.seeds) == sorted(suite.seeds_for(t)) for (_, t), c in self.cells.items())

    def reproduce_cell(self, model: str, task: str) -> str:
        """One command that recomputes one (model, task) cell under the same protocol."""
        from ..models.registry import MODELS

        cell = self.cells[(model, task)]
        if model in self.outside:
            return f"(none: {OUTSIDE_ENGINE})"
        parts = ["chrombench run", f"-m {shlex.quote(self._model_ref(model, MODELS))}"]
        if len(self.suites) == 1:
            parts.append(f"--suite {self.suites[0]}")
        elif self.genes:
            parts.append("--genes " + ",".join(str(self.genes[s]) for s in ("train", "valid", "test")))
        parts.append(f"-t {task}")
        if self.data_spec != "simremc":
            parts.append(f"--data {self.data_spec}")
        parts.append(f"--seeds {','.join(map(str, cell.seeds))}")
        return " ".join(parts)

    def _model_ref(self, model: str, zoo) -> str:
        """What `chrombench run -m` takes to recreate ``model`` under the same name."""
        target = self.targets.get(model, model)
        if model in zoo or target == model:
            return model
        return f"{model}={target}" if ":" in target else target


@dataclass
class Board:
    sections: list[Section]
    skipped: list[tuple[str, str]]  # (file, reason) of records left out


# -- reading -------------------------------------------------------------------------------------------

def collect(records: list[dict], n_boot: int = 1000) -> Board:
    """Group records into sections and compute every statistic the renderers show."""
    skipped: list[tuple[str, str]] = []
    seeds: dict[tuple, list[dict]] = defaultdict(list)
    summaries: dict[tuple, dict] = {}
    for rec in records:
        path = rec.get("_path", "<record>")
        body = {k: v for k, v in rec.items() if k != "_path"}
        errs = results.problems(body)
        if errs:
            skipped.append((path, "; ".join(errs)))
            continue
        key = (rec["dataset"]["name"], rec["dataset"]["version"], _genes_key(rec), rec["model"]["name"],
               rec["task"]["name"])
        if rec["kind"] == "seed":
            seeds[key].append(rec)
        elif key in summaries:
            old, new = sorted([summaries[key], rec], key=lambda r: r.get("created", ""))
            skipped.append((old.get("_path", "<record>"),
                            f"superseded by a newer summary of the same model and task ({new.get('_path', '?')})"))
            summaries[key] = new
        else:
            summaries[key] = rec
    for key, recs in seeds.items():
        if key not in summaries:  # a run still in progress or interrupted: reduce what is there
            summaries[key] = {**results.summarize(_dedupe_seeds(recs)), "_path": recs[0].get("_path")}
    by_dataset: dict[tuple, dict] = defaultdict(dict)
    for key, summary in summaries.items():
        by_dataset[key[:3]][key[3:]] = (summary, _dedupe_seeds(seeds.get(key, [])))
    sections = []
    for (ds, ver, genes), groups in sorted(by_dataset.items()):
        groups = _same_data_per_task(groups, skipped)
        sections.append(_section(ds, ver, dict(genes) if genes else None, groups, n_boot))
    return Board(sections=sections, skipped=skipped)


def _genes_key(rec: dict) -> tuple:
    genes = rec.get("task", {}).get("genes")
    return tuple(sorted(genes.items())) if isinstance(genes, dict) else ()


def genes_label(genes: dict | None) -> str:
    if not genes:
        return "full size"
    return "genes " + "/".join(str(genes.get(s, "?")) for s in ("train", "valid", "test"))


def _same_data_per_task(groups: dict, skipped: list) -> dict:
    """Keep, per task, the records of its most common content hash; list the others as left out."""
    by_task: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for (model, task), (summary, _) in groups.items():
        by_task[task][summary["dataset"]["content_hash"]].append(model)
    kept = {}
    for (model, task), entry in groups.items():
        hashes = by_task[task]
        majority = max(hashes, key=lambda h: (len(hashes[h]), h))
        if entry[0]["dataset"]["content_hash"] == majority:
            kept[(model, task)] = entry
        else:
            skipped.append((entry[0].get("_path", "<record>"),
                            f"{model} on {task} was measured on other data (content hash "
                            f"{entry[0]['dataset']['content_hash'][:12]}) than {', '.join(sorted(hashes[majority]))} "
                            f"({majority[:12]}); results on different test sets are never ranked together"))
    return kept


def collect_dirs(*roots: Path, n_boot: int = 1000) -> Board:
    existing = [Path(r) for r in roots if Path(r).exists()]
    return collect(results.read_records(*existing), n_boot=n_boot)


def _dedupe_seeds(recs: list[dict]) -> list[dict]:
    by_seed = {}
    for r in sorted(recs, key=lambda r: r.get("created", "")):
        by_seed[r["seed"]] = r
    return [by_seed[s] for s in sorted(by_seed)]


# -- one section ------------------------------------------------------------------------------------------

def _section(dataset: str, version: str, genes: dict | None, groups: dict, n_boot: int) -> Section:
    cells: dict[tuple[str, str], Cell] = {}
    interpretation: dict[tuple[str, str], dict] = {}
    mechanisms: dict[tuple[str, str], dict] = {}
    uptake: dict[tuple[str, str], dict] = {}
    simulated = False
    splits: set = set()
    suites, seed_set, families, targets, n_params, outside = set(), set(), {}, {}, {}, set()
    for (model, task), (summary, seed_recs) in groups.items():
        auroc = summary["metrics"].get("test_auroc", {})
        values = [float(v) for v in auroc.get("values", [auroc.get("mean", math.nan)])]
        cell = Cell(model=model, task=task, values=values, seeds=list(summary.get("seeds", [])),
                    oracle=summary.get("oracle_auroc"), record=summary)
        planted = mechanism_uptake.plants_mechanisms(summary.get("dataset") or {})
        preds = _predictions(seed_recs) if n_boot > 0 or planted else []  # read once, for both uses
        cell.ci, cell.ci_method = _confidence_interval(values, preds, n_boot)
        cells[(model, task)] = cell
        scored = next((r["interpretation"] for r in seed_recs if isinstance(r.get("interpretation"), dict)), None)
        if scored:
            interpretation[(model, task)] = scored
        by_mechanism = next((r["interpretation_by_mechanism"] for r in seed_recs
                             if isinstance(r.get("interpretation_by_mechanism"), dict)), None)
        if by_mechanism:
            mechanisms[(model, task)] = by_mechanism
        carried = mechanism_uptake.uptake_of_cell(summary, preds) if planted else None
        if carried:
            uptake[(model, task)] = carried
        simulated = simulated or bool(summary["dataset"].get("simulated"))
        splits.add(summary["dataset"].get("split"))
        if summary["task"].get("suite"):
            suites.add(summary["task"]["suite"])
        seed_set.update(cell.seeds)
        families[model] = summary["model"].get("family", "")
        if results.is_outside(summary) or any(results.is_outside(r) for r in seed_recs):
            outside.add(model)
        targets[model] = summary["model"].get("target") or model
        n_params[model] = max(n_params.get(model, 0), int(summary["model"].get("n_parameters", 0)))
    tasks = sorted({t for _, t in cells})
    models = sorted({m for m, _ in cells})
    matrix = np.array([[cells[(m, t)].mean if (m, t) in cells else math.nan for t in tasks] for m in models])
    matrix = matrix.reshape(len(models), len(tasks))
    complete = [j for j in range(len(tasks)) if np.all(np.isfinite(matrix[:, j]))]
    # best first: mean over the tasks everyone has, then over each model's own tasks
    common_mean = np.nanmean(matrix[:, complete], axis=1) if complete else np.full(len(models), math.nan)
    own_mean = np.array([stats.describe(row)["mean"] for row in matrix])
    order = sorted(range(len(models)), key=lambda i: (-_or_inf(common_mean[i]), -_or_inf(own_mean[i]), models[i]))
    models = [models[i] for i in order]
    matrix = matrix[order]
    sub = matrix[:, complete]
    fried = stats.friedman(sub) if len(models) >= 2 and len(complete) >= 2 else None
    avg = stats.average_ranks(sub) if complete else np.full(len(models), math.nan)
    cd = stats.nemenyi_cd(len(models), len(complete)) if fried else math.nan
    wil = {}
    if len(models) >= 2 and len(complete) >= 2:
        raw, adj = stats.wilcoxon_vs_top(sub, 0)
        wil = {m: (float(raw[i]), float(adj[i])) for i, m in enumerate(models) if i != 0}
    wins = {}
    if REFERENCE_MODEL in models:
        w = stats.wins_against(matrix, models.index(REFERENCE_MODEL))
        wins = {m: w[i] for i, m in enumerate(models) if m != REFERENCE_MODEL}
    oracle = {t: next((cells[(m, t)].oracle for m in models if (m, t) in cells
                       and cells[(m, t)].oracle is not None), None) for t in tasks}
    return Section(
        dataset=dataset, version=version, genes=genes, simulated=simulated, split=next(iter(splits)) if len(splits) == 1 else None,
        models=models, tasks=tasks, cells=cells,
        matrix=matrix, oracle=oracle, complete_tasks=[tasks[j] for j in complete],
        per_model={m: {**stats.describe(matrix[i]), "common_mean": float(common_mean[order][i])}
                   for i, m in enumerate(models)},
        avg_ranks={m: float(avg[i]) for i, m in enumerate(models)}, friedman=fried, cd=cd, wilcoxon=wil,
        wins=wins, suites=sorted(suites), seeds=sorted(seed_set), families=families, targets=targets,
        n_parameters=n_params, interpretation=interpretation, mechanisms=mechanisms, uptake=uptake, outside=outside,
        content_hashes={t: c.record["dataset"]["content_hash"] for (_, t), c in sorted(cells.items())},
        ci_methods=sorted({c.ci_method for c in cells.values() if c.ci_method}))


def _or_inf(x: float) -> float:
    return x if np.isfinite(x) else -math.inf


# -- confidence intervals ---------------------------------------------------------------------------------

def _predictions(seed_recs: list[dict]) -> list:
    """Each seed's (gene_ids, probability, label), None where it left no predictions file."""
    paths = [results.find_predictions(r.get("_path"), r["seed"]) for r in seed_recs]
    return [results.read_predictions(p) if p is not None else None for p in paths]


def _confidence_interval(values: list[float], preds: list, n_boot: int):
    """Bootstrap over genes when every seed left a predictions CSV, else a t-interval over seeds."""
    if n_boot > 0 and preds and all(p is not None for p in preds):
        ids0, y0 = preds[0][0], preds[0][2]
        if all(np.array_equal(ids, ids0) and np.array_equal(y, y0) for ids, _, y in preds):
            lo, hi = stats.bootstrap_auroc_ci(y0, np.stack([p for _, p, _ in preds]), n_boot=n_boot)
            if np.isfinite(lo):
                return (lo, hi), CI_BOOTSTRAP
    lo, hi = stats.seed_ci(values)
    return ((lo, hi), CI_SEEDS) if np.isfinite(lo) else ((math.nan, math.nan), None)
