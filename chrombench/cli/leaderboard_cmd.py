"""``chrombench leaderboard render|validate|bundle`` and ``chrombench submit``."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from ..errors import ChrombenchError
from ..leaderboard.rebuild import REBUILD_TOLERANCE, SAME_PATH_TOLERANCE
from .options import device_option, parse_seeds, suite_option


@click.group()
def leaderboard():
    """Render leaderboards from result records and validate submitted bundles.

    \b
    Examples:
      chrombench leaderboard render                       # your run: ./chrombench-out/results
      chrombench leaderboard render --results chrombench-out/results --results leaderboards/submissions
      chrombench leaderboard render --out leaderboards/quick-simremc
      chrombench leaderboard validate                     # every bundle under leaderboards/
      chrombench leaderboard validate leaderboards/submissions/my-model
      chrombench leaderboard bundle --suite quick --out leaderboards/zoo   # a run's results as bundles
    """


@leaderboard.command("render")
@click.option("--results", "results_dirs", multiple=True, type=click.Path(path_type=Path),
              help="A folder of result records or bundles (repeatable). Default: ./chrombench-out/results "
                   "only; add --results leaderboards/submissions to rank against the submissions.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("leaderboard"), show_default=True,
              help="Where leaderboard.md, leaderboard.csv and index.html are written.")
@click.option("--reproduce", default=None,
              help="The command written as 'Reproduce with:' at the top (default: inferred from the records).")
@click.option("--bootstrap", "n_boot", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Bootstrap resamples for per-task CIs when predictions CSVs exist (0: CIs over seeds only).")
@click.option("--title", default="chrombench leaderboard", show_default=True)
def render_cmd(results_dirs, out_dir, reproduce, n_boot, title):
    """Write leaderboard.md, leaderboard.csv and a self-contained index.html.

    One section per dataset (name, version): simulated and real results are never ranked together.
    Published numbers appear in their own "Reported on the real REMC data" section.
    """
    from ..leaderboard.render import DEFAULT_RESULTS, render

    command = ["chrombench", "leaderboard", "render"]
    for d in results_dirs:
        command += ["--results", str(d)]
    if out_dir != Path("leaderboard"):
        command += ["--out", str(out_dir)]
    rendered = render(results_dirs or DEFAULT_RESULTS, out_dir, reproduce=reproduce,
                      render_command=shlex.join(command), n_boot=n_boot, title=title)
    board = rendered.board
    for path, why in board.skipped:
        click.secho(f"left out {path}: {why}", fg="yellow", err=True)
    if not board.sections:
        click.echo("No result records found: the page says how to produce them (`chrombench run`).")
    for s in board.sections:
        click.echo(f"{s.dataset} {s.version}: {len(s.models)} models x {len(s.tasks)} tasks"
                   + (f", top: {s.top}" if s.top else ""))
    click.echo(f"Wrote {rendered.markdown}, {rendered.csv} and {rendered.html}")


@leaderboard.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--rebuild", "n_rebuild", type=click.IntRange(min=0), default=0, show_default=True, metavar="K",
              help="Also refit K seed records drawn at random from the bundles (their model, parameters and "
                   "seed) and compare the test AUROC. CI uses K >= 1 on new submissions.")
@click.option("--rebuild-tolerance", type=click.FloatRange(min=0), default=None, metavar="DELTA",
              help=f"Largest |ΔAUROC| a rebuilt cell may differ by [default: {SAME_PATH_TOLERANCE} when the refit "
                   f"ran on the record's compute path, {REBUILD_TOLERANCE} across compute paths, as measured by "
                   f"benchmarks/reproducibility_tolerance.py].")
@click.option("--rebuild-seed", type=int, default=None, help="Seed of the random draw of cells (default: fresh).")
@click.option("--pages/--no-pages", default=True, show_default=True,
              help="Re-render every page found (page.json beside leaderboard.md/.csv/index.html) and compare.")
def validate_cmd(paths, n_rebuild, rebuild_tolerance, rebuild_seed, pages):
    """Check submission bundles and pages (default: everything under leaderboards/).

    Rejects schema violations, records edited after the run (digest), records added or removed
    since the bundle was made (manifest), another protocol version, missing tasks, too few,
    duplicated or inconsistent seeds, dataset hashes that differ from the registry's, names that
    are not identifiers, predictions that do not hold each test gene of the split the dataset hash
    names exactly once with its own label, on simulated data a test AUROC above the task's ceiling
    (oracle AUROC), pages that differ from what their bundles render, and unconverged fits
    (stopped at their epoch cap while still improving; a bundle whose manifest says
    "smoke_test": true gets warnings instead). Exit code 1 if anything is rejected.

    \b
    Examples:
      chrombench leaderboard validate                                 # bundles and pages under leaderboards/
      chrombench leaderboard validate leaderboards/submissions/my-model --rebuild 1
      chrombench leaderboard validate leaderboards/zoo --rebuild 3 --rebuild-tolerance 0.005
    """
    from ..leaderboard.pages import find_pages
    from ..leaderboard.rebuild import rebuild
    from ..leaderboard.validate import BundleReport, Rejection, find_bundles, validate_paths

    if not paths:
        if not find_bundles(Path("leaderboards")) and not find_pages(Path("leaderboards")):
            click.echo("No bundles found under leaderboards/ (make one with `chrombench submit`).")
            return
        paths = (Path("leaderboards"),)
    reports = validate_paths(paths, pages=pages)
    if n_rebuild:
        bundles = [r.path for r in reports if r.ok and (r.path / "bundle.json").is_file()]
        found = rebuild(bundles, n_rebuild, rebuild_tolerance, seed=rebuild_seed, say=lambda t: click.echo(t, err=True))
        if found:
            report = BundleReport(path=Path(paths[0]), name="(rebuilt cells)")
            report.rejections += [Rejection(f, why) for f, why in found]
            reports.append(report)
    for r in reports:
        if r.ok:
            click.secho(f"OK        {r.path} ({r.name}, {r.n_records} records)", fg="green")
        else:
            click.secho(f"REJECTED  {r.path} ({len(r.rejections)} problems)", fg="red")
            for rej in r.rejections:
                click.echo(f"  {rej.file}: {rej.reason}")
        for w in r.warnings:
            click.secho(f"  warning: {w.file}: {w.reason}", fg="yellow", err=True)
    rejected = sum(not r.ok for r in reports)
    click.echo(f"{len(reports) - rejected} of {len(reports)} bundles accepted.")
    if rejected:
        raise SystemExit(1)


@leaderboard.command("bundle")
@click.argument("results_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
                default=Path("chrombench-out/results"))
@suite_option(default="auto", extra=("auto", "tasks"),
              help="The suite whose records to bundle; tasks: a run over explicit tasks (-t, e.g. an imported "
                   "dataset), bundled over the tasks it covered; auto: the one the results hold.")
@click.option("-m", "--model", "models", multiple=True, help="Only these models (repeatable). Default: every one.")
@click.option("--out", "out_root", type=click.Path(path_type=Path), default=Path("leaderboards/zoo"),
              show_default=True, help="Each model's bundle goes to OUT/<model>.")
@click.option("--overwrite", is_flag=True, help="Replace existing bundles of the same names.")
@click.option("--smoke-test", is_flag=True,
              help="Declare the bundles a smoke test: unconverged fits are then warnings, not rejections.")
def bundle_cmd(results_dir, suite, models, out_root, overwrite, smoke_test):
    """Bundle the results of a `chrombench run` (one bundle per model), without running anything.

    The records go in as the run sealed them, with their predictions, a model card and the
    manifest; each bundle is validated like a submission. This is how the zoo's results are shipped.

    \b
    Examples:
      chrombench run && chrombench leaderboard bundle --suite quick --out leaderboards/zoo
      chrombench leaderboard bundle chrombench-out/results --suite quick --out mine   # from `chrombench record`
    """
    from ..leaderboard.submit import bundle_results
    from ..leaderboard.validate import validate_bundle

    bundles = bundle_results(results_dir, None if suite == "tasks" else suite, out_root, models=list(models) or None,
                             overwrite=overwrite,
                             smoke_test=smoke_test)
    rejected = 0
    for b in bundles:
        report = validate_bundle(b)
        click.echo(f"{'OK      ' if report.ok else 'REJECTED'}  {b} ({report.n_records} records)")
        for rej in report.rejections:
            click.echo(f"  {rej.file}: {rej.reason}", err=True)
        for w in report.warnings:
            click.echo(f"  warning: {w.file}: {w.reason}", err=True)
        rejected += not report.ok
    if rejected:
        raise ChrombenchError(f"{rejected} of {len(bundles)} bundles do not pass validation")


@click.command()
@click.argument("target")
@click.option("--name", required=True, help="The name the submission appears under on the leaderboard.")
@suite_option(default="quick")
@click.option("--data", "dataset", default="simremc", show_default=True, help="simremc, remc or an imported dataset.")
@click.option("--trials", type=click.IntRange(min=1), default=None,
              help="Optuna trials per task (default: the engine's).")
@click.option("--timeout", type=float, default=None, help="Tuning time budget per task, seconds.")
@click.option("--seeds", default=None,
              help="Seeds of the final fits: 0-4 or 0,1,2. Default: the suite's (quick: 0-2; roadmap56: 0, and 0-2 "
                   "on its development tasks).")
@click.option("--out", "out_root", type=click.Path(path_type=Path), default=Path("leaderboards/submissions"),
              show_default=True, help="The bundle goes to OUT/NAME.")
@click.option("--work-dir", type=click.Path(path_type=Path), default=None,
              help="The engine's output (resumable). Default: chrombench-out/submissions/NAME.")
@device_option()
@click.option("--overwrite", is_flag=True, help="Replace an existing bundle of the same name.")
def submit(target, name, suite, dataset, trials, timeout, seeds, out_root, work_dir, device, overwrite):
    """Run the full protocol for your model and write a leaderboard bundle.

    TARGET is a file and class (path/to/model.py:MyModel) or an importable module:Class; the class
    follows the ChromModel contract. The bundle (records, model card, manifest) is written to
    leaderboards/submissions/NAME and validated.

    \b
    Example:
      chrombench submit my_model.py:MyModel --name my-model --suite quick --seeds 0-2
    """
    from ..leaderboard.submit import submit as run_submission
    from ..leaderboard.validate import validate_bundle

    seed_list = parse_seeds(seeds) if seeds is not None else None
    command = shlex.join(["chrombench", "submit", target, "--name", name, "--suite", suite]
                         + (["--seeds", seeds] if seeds is not None else [])
                         + (["--data", dataset] if dataset != "simremc" else [])
                         + (["--trials", str(trials)] if trials else []))
    bundle = run_submission(target, name, suite=suite, dataset=dataset, trials=trials, timeout=timeout,
                            seeds=seed_list, out_root=out_root, work_dir=work_dir, device=device,
                            overwrite=overwrite, command=command)
    report = validate_bundle(bundle)
    click.echo(f"Wrote {bundle} ({report.n_records} records, model card, manifest).")
    if not report.ok:
        for rej in report.rejections:
            click.echo(f"  {rej.file}: {rej.reason}", err=True)
        raise ChrombenchError(f"the bundle {bundle} does not pass `chrombench leaderboard validate`")
    click.echo(f"Validated. Render it with: chrombench leaderboard render --results {out_root}")
