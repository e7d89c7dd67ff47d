"""``chrombench data``: fetch the real archive, import your own data, inspect and export datasets."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import click

from ..data.build import DEFAULT_TEST_CHROMS as DEFAULT_TEST, DEFAULT_VALID_CHROMS as DEFAULT_VALID
from ..errors import ChrombenchError


_OS_HINTS = {errno.ENOSPC: "the disk is full: free space (or point $CHROMBENCH_HOME elsewhere) and run it again",
             errno.EDQUOT: "the disk quota is used up: free space and run it again",
             errno.EROFS: "the file system is read-only: point $CHROMBENCH_HOME (or --out) at a writable folder",
             errno.EACCES: "permission denied: check the folder's owner and mode, or point $CHROMBENCH_HOME elsewhere",
             errno.EPERM: "not permitted: check the folder's owner and mode",
             errno.EEXIST: "a file is in the way of a folder chrombench needs: move it away",
             errno.ENOTDIR: "a file is in the way of a folder chrombench needs: move it away",
             errno.EISDIR: "a folder is where a file was expected"}


def os_error_line(exc: OSError) -> str:
    """One line naming the file(s) and what to do, for an OSError from a data command."""
    where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    hint = _OS_HINTS.get(exc.errno, "")
    what = exc.strerror or str(exc) or type(exc).__name__
    return f"{where + ': ' if where else ''}{what}{'; ' + hint if hint else ''}. Nothing was registered."


class DataGroup(click.Group):
    """Turns what the operating system refuses (a read-only or full disk, a file in the way), an
    allocation too large for this machine and nesting too deep to parse into one line, not a
    traceback. Every data command writes through staging folders, so nothing half-written remains."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except OSError as exc:
            raise ChrombenchError(os_error_line(exc)) from exc
        except MemoryError as exc:
            raise ChrombenchError(f"out of memory ({exc or 'an allocation failed'}): the inputs or --window/--bins "
                                  "ask for more than this machine has. Nothing was registered.") from exc
        except RecursionError as exc:
            raise ChrombenchError("an input is nested too deeply to read (a damaged or hostile JSON file?). "
                                  "Nothing was registered.") from exc


@click.group(cls=DataGroup)
def data():
    """Fetch the real REMC archive, import your own data, inspect and export datasets.

    \b
    Examples:
      chrombench data list
      chrombench data fetch --tasks E003,E116          # the real archive (needs network)
      chrombench data import my_cells/ --name mine     # your data in the archive layout
      chrombench data build --name mine --mark H3K4me3=k4.bw ... --annotation genes.gtf \\
          --expression rpkm.tsv:E003                   # your tracks, annotation and expression
      chrombench data info remc
      chrombench data export simremc --tasks E003 -o sim/
      chrombench data remove mine                      # unregister it and delete its arrays
    """


def _parse_tasks(tasks: str | None, all_tasks: bool) -> list[str]:
    from ..data.load import normalise_eid
    from ..errors import UnknownNameError
    from ..registry import suggest
    from ..tasks import all_specs

    if all_tasks == bool(tasks):
        raise click.UsageError("name the tasks with --tasks E003,E116 or take all 56 with --all (not both)")
    if all_tasks:
        return list(all_specs())
    eids = []
    for raw in (t.strip() for t in tasks.split(",")):
        if raw:
            eid = normalise_eid(raw)
            if eid is None:
                raise UnknownNameError(suggest(raw, list(all_specs()), "task"))
            if eid not in eids:
                eids.append(eid)
    return eids


def _dataset_info(name: str) -> dict:
    """catalog.dataset_info, with a hint instead of "did you mean 'remc'" when remc is not fetched yet."""
    from ..data.catalog import dataset_info, read_registry
    from ..data.layout import REMC

    if name == REMC and REMC not in read_registry()["datasets"]:
        raise ChrombenchError("the real REMC archive has not been fetched yet; run "
                              "`chrombench data fetch --tasks E003,E116` (or --all; needs network)")
    return dataset_info(name)


DATASET_HASH_LINE = ("\ndataset hash {} (sha256 over the task hashes above; a task hash covers the task's arrays "
                     "and is what result records carry)")


def _balance(split: dict) -> str:
    return f"{split['positives'] / split['genes']:.0%}" if split["genes"] else "-"


def _task_rows(tasks: dict, oracle: bool = False) -> list[str]:
    """One line per task: genes and % ON per split, short task hash (and the simulator's oracle AUROC)."""
    lines = [f"{'task':<12} {'train':>6} {'valid':>6} {'test':>6}  {'% ON train/valid/test':<22} {'task hash':<12}"
             + ("  oracle AUROC" if oracle else "")]
    for task, meta in sorted(tasks.items()):
        s = meta["splits"]
        balance = "/".join(_balance(s[k]) for k in ("train", "valid", "test"))
        line = (f"{task:<12} {s['train']['genes']:>6} {s['valid']['genes']:>6} {s['test']['genes']:>6}  "
                f"{balance:<22} {meta['content_hash'][:12]:<12}")
        if oracle and meta.get("oracle_auroc") is not None:
            line += f"  {meta['oracle_auroc']:.3f}"
        lines.append(line)
    return lines


@data.command("fetch")
@click.option("--tasks", default=None, help="Comma-separated EIDs, e.g. E003,E116.")
@click.option("--all", "all_tasks", is_flag=True, help="All 56 tasks.")
@click.option("--base-url", default=None, help="Zenodo (or a mirror) [env CHROMBENCH_ZENODO_URL; default https://zenodo.org].")
@click.option("--record", default=2652278, show_default=True, type=int, help="Zenodo record of the archive.")
@click.option("--force", is_flag=True, help="Extract again tasks that are already in the cache.")
@click.option("--retries", default=2, show_default=True, type=click.IntRange(0, 20),
              help="Times to resume an interrupted download before giving up.")
def fetch(tasks, all_tasks, base_url, record, force, retries):
    """Download the real DeepChrome/AttentiveChrome archive and cache the tasks asked for.

    Downloads resume where they stopped (run the command again) and are verified against the
    record's md5. Tasks whose files are empty or invalid in the archive are reported and marked
    unavailable; the others are registered as dataset `remc` (use them with `--data remc`).
    """
    from ..data.fetch import fetch_remc

    eids = _parse_tasks(tasks, all_tasks)
    res = fetch_remc(eids, base=base_url, record=record, force=force, retries=retries)
    entry = res.entry
    for task, warnings in sorted(res.warnings.items()):
        for w in warnings:
            click.secho(f"Warning: {task}: {w}", fg="yellow", err=True)
    click.echo(f"{'task':<6} {'status':<12} {'train':>6} {'valid':>6} {'test':>6}  note")
    for task in eids:
        if task in res.unavailable:
            click.echo(f"{task:<6} {'unavailable':<12} {'-':>6} {'-':>6} {'-':>6}  {res.unavailable[task]}")
            continue
        meta = entry["tasks"][task]
        n = [meta["splits"][s]["genes"] for s in ("train", "valid", "test")]
        status = "cached" if task in res.already else "fetched"
        note = "; ".join(entry.get("warnings", {}).get(task, []))
        click.echo(f"{task:<6} {status:<12} {n[0]:>6} {n[1]:>6} {n[2]:>6}  {note}")
    ok = res.available
    click.echo(f"\n{len(ok)} of {len(eids)} tasks available in dataset 'remc' (Zenodo record {record}). "
               f"Use them with `--data remc -t {ok[0] if ok else 'E003'}`.")
    kept_other = entry.get("version") not in (None, str(record))
    if res.unavailable and not kept_other:
        click.echo(f"Unavailable (recorded in the registry): {', '.join(sorted(res.unavailable))}.")
    if not ok:
        raise ChrombenchError("none of the requested tasks is available in the archive"
                              + (f"; dataset 'remc' keeps the {len(entry['tasks'])} task(s) of Zenodo record "
                                 f"{entry['version']} registered before" if kept_other else ""))


@data.command("import")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--name", required=True, help="Dataset name to register, e.g. mycells.")
@click.option("--version", "version", default="1", show_default=True, help="Version label stored with the dataset.")
@click.option("--overwrite", is_flag=True, help="Replace a dataset already registered under NAME.")
def import_cmd(path, name, version, overwrite):
    """Validate and import PATH in the archive layout as dataset NAME.

    PATH holds either {train,valid,test}.csv (one task, used as `-t NAME`) or
    <task>/classification/{train,valid,test}.csv (many tasks, used as `-t NAME/<task>`).
    Nothing is registered unless every file is valid.
    """
    from tqdm.auto import tqdm

    from ..data.importer import import_dataset

    entry = import_dataset(path, name, version=version, overwrite=overwrite,
                           progress=lambda items: tqdm(items, desc="import", unit="task", disable=None))
    click.echo(f"Imported {len(entry['tasks'])} task(s) as dataset {name!r} version {entry['version']}")
    click.echo("\n".join(_task_rows(entry["tasks"])))
    click.echo(DATASET_HASH_LINE.format(entry["content_hash"]))
    first = next(iter(entry["tasks"]))
    use = f"-t {name}" if entry["single_task"] else f"-t {name}/{first} (or --data {name} -t {first})"
    click.echo(f"Use it with {use}.")


def _parse_marks(values: tuple[str, ...]) -> dict[str, Path]:
    marks: dict[str, Path] = {}
    for raw in values:
        mark, sep, path = raw.partition("=")
        if not sep or not mark or not path:
            raise click.BadParameter(f"{raw!r}: write it as MARK=PATH, e.g. H3K4me3=E003-H3K4me3.bw", param_hint="--mark")
        if mark in marks:
            raise click.BadParameter(f"mark {mark!r} is given twice ({marks[mark]} and {path}); each mark once",
                                     param_hint="--mark")
        marks[mark] = Path(path)
    return marks


def _chrom_list(value: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(c.strip() for c in value.split(",") if c.strip()) if value else default


@data.command("build")
@click.option("--name", required=True, help="Dataset name to register; the task is then `-t NAME` everywhere.")
@click.option("--mark", "marks", multiple=True, required=True, metavar="MARK=PATH",
              help="One histone-mark track: a bigWig (.bw) or aligned reads (.bed/.tagAlign, optionally .gz). "
                   "Repeat for each mark; the arrays keep this order.")
@click.option("--annotation", required=True, type=click.Path(path_type=Path),
              help="Gene annotation GTF (GENCODE/Ensembl, plain or .gz).")
@click.option("--expression", required=True, metavar="PATH[:COLUMN]",
              help="Expression table: first column gene id, then one column per cell type (e.g. "
                   "57epigenomes.RPKM.pc:E003). Gene versions (ENSG00000223972.5) are ignored when matching.")
@click.option("--window", default=10_000, show_default=True, type=click.IntRange(2, 10_000_000),
              help="Window around each TSS, in bp.")
@click.option("--bins", default=100, show_default=True, type=click.IntRange(1, 100_000), help="Bins per window.")
@click.option("--split", "split", type=click.Choice(["random", "chromosome"]), default="random", show_default=True,
              help="random: thirds, as the DeepChrome archive; chromosome: valid and test are whole chromosomes.")
@click.option("--valid-chroms", default=None, metavar="LIST",
              help="With --split chromosome [default: " + ",".join(DEFAULT_VALID) + "] ('chr' prefix optional).")
@click.option("--test-chroms", default=None, metavar="LIST",
              help="With --split chromosome [default: " + ",".join(DEFAULT_TEST) + "].")
@click.option("--biotype", "biotypes", multiple=True, default=("protein_coding",), show_default=True,
              help="Keep genes of this gene_type/gene_biotype (repeat for several; 'all' keeps every gene).")
@click.option("--chrom-sizes", type=click.Path(path_type=Path), default=None,
              help="chrom<TAB>length file; needed when every track is a reads file (bigWigs carry their own).")
@click.option("--annotation-chroms", type=click.Choice(["as-is", "add-chr", "strip-chr"]), default="as-is",
              show_default=True, help="Rename the annotation's chromosomes to match the tracks (1 -> chr1, or back).")
@click.option("--exclude-chroms", default=None, metavar="LIST",
              help="Drop the genes of these chromosomes, e.g. chrY,chrM for a female sample whose tracks have "
                   "no chrY ('chr' prefix optional).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the random split.")
@click.option("--version", "version", default="1", show_default=True, help="Version label stored with the dataset.")
@click.option("--min-genes", default=300, show_default=True, type=click.IntRange(3, None),
              help="Refuse to build with fewer genes left after the rules.")
@click.option("--overwrite", is_flag=True, help="Replace a dataset already in the store under NAME.")
def build_cmd(name, marks, annotation, expression, window, bins, split, valid_chroms, test_chroms, biotypes,
              chrom_sizes, annotation_chroms, exclude_chroms, seed, version, min_genes, overwrite):
    """Build a task from your own cell type's tracks, a gene annotation and expression values.

    \b
    The rules (as the DeepChrome archive's, stated in full in the README, "Your own cell type"):
      - one TSS per gene: its 5' end (GTF start on +, end on -);
      - WINDOW bp around it in BINS equal bins, ordered 5'->3' along the gene's strand
        (+: [TSS-W/2, TSS+W/2); -: the mirror image, read backwards), so bin BINS/2 starts at the TSS;
      - a bin's value: bigWig, the signal summed over its bases (area, rounded to an integer);
        reads, the number of reads starting in it;
      - genes kept: --biotype (protein_coding), on a chromosome the tracks cover, with an
        expression value, with the whole window inside the chromosome (the count each rule drops
        is printed);
      - label 1 where expression is above the median over the kept genes;
      - genes whose window is all zero are counted per mark and chromosome; a mark (or every
        mark) with no data on a chromosome (10+ such genes, over half of it) refuses the build:
        fix the track, or drop the chromosome with --exclude-chroms;
      - refused: a bedGraph (convert it with bedGraphToBigWig), one file under two marks, NaN or
        infinite values, GTF rows with end < start, numbers not written with ASCII digits.

    \b
    Example (Roadmap E003, five marks, hg19 GENCODE):
      chrombench data build --name E003mine \\
        --mark H3K27me3=E003-H3K27me3.bw --mark H3K36me3=E003-H3K36me3.bw \\
        --mark H3K4me1=E003-H3K4me1.bw --mark H3K4me3=E003-H3K4me3.bw --mark H3K9me3=E003-H3K9me3.bw \\
        --annotation gencode.v19.annotation.gtf.gz --expression 57epigenomes.RPKM.pc:E003 --split chromosome
      chrombench run -t E003mine -m logistic-regression

    Nothing is written to the store unless every input is valid; the dataset records every input's
    path, size and sha256 and the build parameters (`chrombench data info NAME --format json`).
    """
    from tqdm.auto import tqdm

    from ..data.build import BuildSpec, build_dataset, describe, empty_summary

    spec = BuildSpec(name=name, marks=_parse_marks(marks), annotation=annotation, expression=expression,
                     window=window, bins=bins, split=split,
                     valid_chroms=_chrom_list(valid_chroms, DEFAULT_VALID), test_chroms=_chrom_list(test_chroms, DEFAULT_TEST),
                     biotypes=None if "all" in biotypes else tuple(biotypes), chrom_sizes=chrom_sizes,
                     annotation_chroms=annotation_chroms, exclude_chroms=_chrom_list(exclude_chroms, ()), seed=seed,
                     version=version, min_genes=min_genes)
    res = build_dataset(spec, overwrite=overwrite,
                        progress=lambda steps: tqdm(steps, desc="binning", unit="chrom", disable=None))
    entry = res.entry
    click.echo(f"Built dataset {name!r} version {entry['version']}: {len(spec.marks)} marks x {bins} bins of "
               f"{window // bins} bp, {split} split")
    click.echo(f"genes: {res.annotated} in the annotation, {res.kept} kept; dropped: {describe(res.dropped)}")
    click.echo(empty_summary(res.empty))
    click.echo("\n".join(_task_rows(entry["tasks"])))
    click.echo(DATASET_HASH_LINE.format(entry["content_hash"]))
    click.echo(f"Use it with -t {name}, e.g. `chrombench run -t {name} -m logistic-regression`.")


@data.command("info")
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def info(name, fmt):
    """Genes per split, label balance, source, version, dataset and task hashes and cache path of dataset NAME."""
    d = _dataset_info(name)
    if fmt == "json":
        click.echo(json.dumps(d, indent=2, sort_keys=True))
        return
    click.echo(f"{d['name']}  version {d['version']}{'  (simulated)' if d.get('simulated') else ''}")
    click.echo(f"  source:       {d['source']}")
    click.echo(f"  path:         {d['path']}")
    if d.get("content_hash"):
        click.echo(f"  dataset hash: {d['content_hash']}  (over the task hashes below; records carry the task hash)")
    if d.get("note"):
        click.echo(f"  note:         {d['note']}")
    build = d.get("build")
    if build:  # chrombench data build: what went in and by which rules
        p, g = build["params"], build["genes"]
        tracks = [f"{i['mark']}={Path(i['path']).name}" for i in build["inputs"] if i["role"] == "track"]
        click.echo(f"  built from:   {', '.join(tracks)}")
        for i in build["inputs"]:
            if i["role"] != "track":
                col = f" (column {i['column']})" if i.get("column") else ""
                click.echo(f"  {i['role'] + ':':<14}{i['path']}{col}  sha256 {i['sha256'][:12]}")
        click.echo(f"  layout:       {p['bins']} bins of {p['bin_bp']} bp ({p['window']} bp around the TSS), {p['split']} split"
                   + (f" (valid {','.join(p['valid_chroms'])}; test {','.join(p['test_chroms'])})" if p.get("test_chroms") else ""))
        click.echo(f"  genes:        {g['annotated']} annotated, {g['kept']} kept; dropped "
                   + ", ".join(f"{n} by '{rule}'" for rule, n in g["dropped"].items()))
    if d["tasks"]:
        click.echo("")
        click.echo("\n".join(_task_rows(d["tasks"], oracle=bool(d.get("simulated")))))
    for task, warnings in sorted(d.get("warnings", {}).items()):
        click.echo(f"  warning {task}: {'; '.join(warnings)}")
    for task, reason in sorted(d.get("unavailable", {}).items()):
        click.echo(f"  unavailable {task}: {reason}")


@data.command("list")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def list_datasets(fmt):
    """All datasets: the simulator, the real archive if fetched, and imported ones."""
    from ..data.catalog import dataset_info, read_registry
    from ..data.layout import REMC, SIMREMC

    sim = dataset_info(SIMREMC)
    reg = read_registry()["datasets"]
    rows = [{"name": SIMREMC, "version": sim["version"], "tasks": sim["n_tasks"], "source": sim["source"],
             "content_hash": None, "note": f"{len(sim['tasks'])} cached, the rest generated on first use"}]
    if REMC not in reg:
        rows.append({"name": REMC, "version": None, "tasks": 0, "source": "zenodo:2652278", "content_hash": None,
                     "note": "not fetched: chrombench data fetch --tasks E003"})
    for name, e in sorted(reg.items()):
        unavailable = len(e.get("unavailable", {}))
        rows.append({"name": name, "version": e["version"], "tasks": len(e["tasks"]), "source": e["source"],
                     "content_hash": e.get("content_hash"),
                     "note": f"{unavailable} unavailable" if unavailable else ""})
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'name':<16} {'version':<14} {'tasks':>5}  {'dataset hash':<12}  source")
    for r in rows:
        h = (r["content_hash"] or "-")[:12]
        click.echo(f"{r['name']:<16} {r['version'] or '-':<14} {r['tasks']:>5}  {h:<12}  {r['source']}"
                   + (f"  ({r['note']})" if r["note"] else ""))


@data.command("export")
@click.argument("dataset")
@click.option("--tasks", default=None, help="Comma-separated tasks (default: all tasks of an imported or fetched "
              "dataset; required for simremc).")
@click.option("--quick", is_flag=True, help="Export the quick suite's gene subsample instead of the full splits.")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace task folders that already exist in the output.")
def export(dataset, tasks, quick, out_dir, overwrite):
    """Write tasks of DATASET in the archive layout: OUT/<task>/classification/{train,valid,test}.csv.

    Shows that the simulator speaks the real format; `data import OUT` gives back the same
    task hashes.
    """
    from .. import MARKS, N_BINS
    from ..data.arrays import SPLITS
    from ..data.csvformat import write_split
    from ..data.layout import SIMREMC
    from ..data.load import load_task, normalise_eid

    if tasks:
        names = [t.strip() for t in tasks.split(",") if t.strip()]
    elif dataset == SIMREMC:
        raise click.UsageError("name the simulated tasks to export, e.g. --tasks E003,E116")
    else:
        names = list(_dataset_info(dataset)["tasks"])
    loaded = []
    for t in names:
        if dataset == SIMREMC:
            t = normalise_eid(t) or t  # accept e3 or e003 as the other commands do
        d = load_task(t, dataset, quick=quick)
        if d.train.shape != (N_BINS, len(MARKS)) or d.train.marks != MARKS:
            raise ChrombenchError(f"{dataset}/{d.task} has {d.train.shape[0]} bins x {', '.join(d.train.marks)}; the "
                                  f"archive's CSV layout holds {N_BINS} bins x {', '.join(MARKS)} only, so it cannot be "
                                  f"exported in it (its arrays are in the store: `chrombench data info {dataset}`)")
        folder = out_dir / d.task / "classification"
        if folder.exists() and not overwrite:
            raise ChrombenchError(f"{folder} already exists; pass --overwrite to replace it")
        loaded.append((d, folder))
    for d, folder in loaded:
        folder.mkdir(parents=True, exist_ok=True)
        for s in SPLITS:
            write_split(folder / f"{s}.csv", d.split(s))
        click.echo(f"{d.task}: {folder}  ({', '.join(f'{s} {len(d.split(s))}' for s in SPLITS)} genes, "
                   f"task hash {d.dataset.content_hash[:12]})")
    click.echo(f"Wrote {len(loaded)} task(s) to {out_dir}; import them with "
               f"`chrombench data import {out_dir} --name NAME`.")


@data.command("remove")
@click.argument("name")
def remove(name):
    """Unregister dataset NAME and delete its arrays from the cache.

    The registry is rewritten atomically: NAME is either whole and registered or gone. Result
    records and bundles made on it stay (they carry its hashes). The built-in simulator cannot be
    removed; the fetched archive (`remc`) can, and downloads under $CHROMBENCH_HOME/downloads stay
    for a later fetch.

    \b
    Examples:
      chrombench data remove mine
      chrombench data remove remc
    """
    from ..data.catalog import remove_dataset

    entry = remove_dataset(name)
    click.echo(f"Removed dataset {name!r} version {entry['version']} ({len(entry['tasks'])} task(s), dataset hash "
               f"{str(entry.get('content_hash') or '-')[:12]}) and its arrays at {entry['path']}.")
