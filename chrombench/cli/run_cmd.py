"""``chrombench run``, ``chrombench ablate`` and ``chrombench ui``."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path

import click

from ..errors import ChrombenchError
from .options import device_option, parse_seeds, suite_option

DEFAULT_OUT = Path("chrombench-out")


def _quick_genes() -> str:
    """The quick suite's gene sizes as TRAIN,VALID,TEST, read from the registry (never a stale copy)."""
    from ..tasks import get_suite

    genes = get_suite("quick").genes
    return ",".join(str(genes[s]) for s in ("train", "valid", "test"))


def parse_genes(text: str | None) -> dict | None:
    if not text:
        return None
    parts = text.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise click.BadParameter(f"{text!r}: give three positive sizes TRAIN,VALID,TEST, e.g. {_quick_genes()}")
    return dict(zip(("train", "valid", "test"), (int(p) for p in parts)))


def budget_options(fn):
    """Options shared by ``run`` and ``ablate``."""
    opts = [
        click.option("-t", "--task", "tasks", multiple=True, metavar="TASK",
                     help="A task (E003, NAME, NAME/TASK); repeat for more. Default: --suite quick."),
        suite_option(help="quick: 3 tasks, subsampled genes. roadmap56: all 56 tasks, full size, each model's "
                          "defaults held fixed (see `chrombench tasks suites`). With -t: only those tasks of it."),
        click.option("--data", "dataset", default="simremc", show_default=True, metavar="simremc|remc|NAME",
                     help="Dataset: the simulator, the real archive (chrombench data fetch), or an imported one. "
                          "simremc is simulator version 1.1; simremc@1.2 is 1.2 (headroom, planted mechanisms), "
                          "simremc@1.2:chromosome holds out whole chromosomes instead of random thirds."),
        click.option("--trials", type=click.IntRange(0), default=None,
                     help="Optuna trials per (model, task); 0: no tuning, the models' defaults. Default: the "
                          "suite's protocol (per model for tuned suites, 0 for roadmap56)."),
        click.option("--timeout", type=click.FloatRange(0, min_open=True), default=None, metavar="SECONDS",
                     help="Tuning budget per (model, task) in trial-seconds (summed over workers and restarts)."),
        click.option("--seeds", default=None, metavar="0-2|0,1,2",
                     help="Seeds for the final refits, each tested once. Default: the suite's (quick: 0-2; "
                          "roadmap56: 0, and 0-2 on its development tasks E003, E112, E123); 0-2 for -t tasks."),
        click.option("--genes", default=None, metavar="TRAIN,VALID,TEST",
                     help=f"Subsample each split of explicit tasks (the quick suite uses {_quick_genes()})."),
        click.option("--storage", default=None, metavar="URL",
                     help="Optuna/claims database shared by workers, e.g. postgresql://user@host/db. "
                          "Default: sqlite:///OUTPUT_DIR/optuna.db."),
        click.option("--tracking-uri", default=None, metavar="URI",
                     help="MLflow tracking server. Default: sqlite:///OUTPUT_DIR/mlflow.db."),
        click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_OUT,
                     show_default=True, help="Results, models, MLflow and Optuna stores."),
        click.option("--overwrite-strategy", type=click.Choice(["only-missing", "always", "never"]),
                     default="only-missing", show_default=True,
                     help="only-missing: resume, skip finished seeds. always: redo everything (one worker). "
                          "never: leave any existing result untouched."),
        device_option(),
        click.option("--workers", type=click.IntRange(1), default=None,
                     help="Processes on this machine sharing the work (each trial and seed is still done once). "
                          "Default: $CHROMBENCH_WORKERS, else one per CPU core up to 4; 1 with "
                          "--overwrite-strategy always."),
        click.option("--no-progress", is_flag=True, help="No progress bar (logs and CI)."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def make_config(models, tasks, suite, dataset, trials, timeout, seeds, genes, storage, tracking_uri, output_dir,
                overwrite_strategy, device):
    from ..engine.plan import RunConfig

    return RunConfig(models=list(models) or None, tasks=list(tasks) or None, suite=suite, dataset=dataset,
                     trials=trials, timeout=timeout, seeds=parse_seeds(seeds) if seeds is not None else None, storage=storage,
                     tracking_uri=tracking_uri, output_dir=output_dir, overwrite_strategy=overwrite_strategy,
                     device=device, genes=parse_genes(genes))


@contextlib.contextmanager
def _terminate_like_ctrl_c():
    """SIGTERM (a scheduler's or `kill`'s stop) unwinds like Ctrl-C: the running trial is marked FAIL and
    the MLflow runs KILLED right away, instead of waiting for the next run to find them orphaned."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _apply_env(cfg) -> None:
    """Heartbeat, grace period and polling for tests and clusters (no CLI flags: rarely touched)."""
    for attr, env in (("heartbeat_interval", "CHROMBENCH_HEARTBEAT_S"), ("grace_period", "CHROMBENCH_GRACE_S"),
                      ("poll_interval", "CHROMBENCH_POLL_S")):
        if os.environ.get(env):
            setattr(cfg, attr, type(getattr(cfg, attr))(float(os.environ[env])))


def _worker_args(command: str, models, tasks, suite, dataset, trials, timeout, seeds, genes, storage, tracking_uri,
                 output_dir, overwrite_strategy, device) -> list[str]:
    """The same command for an extra worker process."""
    args = [command]
    for flag, values in (("-m", models), ("-t", tasks)):
        for v in values:
            args += [flag, v]
    for flag, value in (("--suite", suite), ("--data", dataset), ("--trials", trials), ("--timeout", timeout),
                        ("--seeds", seeds), ("--genes", genes), ("--storage", storage),
                        ("--tracking-uri", tracking_uri), ("--output-dir", output_dir),
                        ("--overwrite-strategy", overwrite_strategy), ("--device", device)):
        if value is not None:
            args += [flag, str(value)]
    return args


@contextlib.contextmanager
def _local_workers(n: int | None, overwrite_strategy: str, output_dir: Path, args: list[str]):
    """Run the block as the main worker, with ``n - 1`` more on this machine; yields a list that is
    filled, after the block, with the extra workers that failed."""
    from ..engine import workers

    n = 1 if overwrite_strategy == "always" else (n or workers.default_workers())
    extra = workers.spawn(args, n, Path(output_dir) / "logs") if n > 1 else []
    failed: list = []
    try:
        yield failed
    except BaseException:
        workers.stop(extra)
        raise
    failed += workers.join(extra)


@click.command()
@click.option("-m", "--model", "models", multiple=True, metavar="MODEL",
              help="A zoo model (or alias: ac, dc, lr, rf, xgb), module:Class, path/file.py:Class or NAME=TARGET; "
                   "repeat for more. Default: the suite's models (`chrombench tasks suites` lists them; a suite "
                   "without a list runs the whole zoo, `chrombench models list`).")
@budget_options
@click.option("--order", type=click.Choice(["task", "model"]), default="task", show_default=True,
              help="The order workers take (model, task) pairs in. task: every model on a task, then the next "
                   "task. model: one model's tasks, then the next model's, so columns complete one by one and "
                   "no worker waits between them (how leaderboards/roadmap56-simremc/build.sh fills a table).")
def run(models, tasks, suite, dataset, trials, timeout, seeds, genes, storage, tracking_uri, output_dir,
        overwrite_strategy, device, workers, no_progress, order):
    """Fit per seed to convergence, test once per seed, track (MLflow), write result records.

    The shipped suites hold each model's defaults fixed (their protocol); -t tasks and --trials N tune
    with Optuna on train/valid first. Every record says how its fit ended.

    \b
    Examples:
      chrombench run                                   quick suite, 8 models, about 5 min on 2 cores
      chrombench run -m attentivechrome -t E003        one full-size task, default budget
      chrombench run -m xgboost --suite roadmap56 --trials 30 --seeds 0-4
      chrombench run -m my_model.py:MyModel -t E003 --genes 2000,1000,1000
      chrombench run -m deepchrome -t E003 --data simremc@1.2:chromosome   simulator 1.2, chromosome split
      chrombench run --storage postgresql://me@db/chrombench ...   on several machines at once

    Interrupted runs resume: start the same command again. Results land in
    OUTPUT_DIR/results/<dataset>/<model>/<task>/{seed-<k>,summary}.json.
    """
    from ..engine.run import run_evaluations

    cfg = make_config(models, tasks, suite, dataset, trials, timeout, seeds, genes, storage, tracking_uri,
                      output_dir, overwrite_strategy, device)
    _apply_env(cfg)
    cfg.order = order
    failures: dict = {}
    args = _worker_args("run", models, tasks, suite, dataset, trials, timeout, seeds, genes, storage, tracking_uri,
                        output_dir, overwrite_strategy, device) + ["--order", order]
    with _terminate_like_ctrl_c(), _local_workers(workers, overwrite_strategy, output_dir, args) as failed:
        summaries = run_evaluations(cfg, progress=not no_progress, failures=failures)
    if summaries:
        from ..leaderboard.render import console_table

        click.echo(console_table(summaries))
        _render_run(cfg)
    _browse_hint(cfg)
    for w in failed:
        failures[f"worker {w.index}"] = f"exited with {w.proc.returncode}; see {w.log}"
    if failures:
        click.echo(f"\n{len(failures)} of the (model, task) pairs failed; the others are in the table above:", err=True)
        for pair, why in failures.items():
            click.echo(f"  {pair}: {why}", err=True)
        click.echo("Fix the cause and run the same command again: finished pairs are kept.", err=True)
        sys.exit(1)


@click.command()
@budget_options
def ablate(tasks, suite, dataset, trials, timeout, seeds, genes, storage, tracking_uri, output_dir, overwrite_strategy,
           device, workers, no_progress):
    """AttentiveChrome against its ablations under the same protocol, compared per task.

    \b
    Runs attentivechrome, attentivechrome-no-alpha, -no-beta, -unidirectional and lstm, then prints
    the test AUROC difference to the full model per task, wins out of N tasks and the Wilcoxon
    signed-rank p-value over tasks.
    Example:  chrombench ablate --suite quick
    """
    from ..engine.ablate import format_comparison, run_ablations

    cfg = make_config((), tasks, suite, dataset, trials, timeout, seeds, genes, storage, tracking_uri, output_dir,
                      overwrite_strategy, device)
    _apply_env(cfg)
    args = _worker_args("ablate", (), tasks, suite, dataset, trials, timeout, seeds, genes, storage, tracking_uri,
                        output_dir, overwrite_strategy, device)
    with _terminate_like_ctrl_c(), _local_workers(workers, overwrite_strategy, output_dir, args) as failed:
        _, comparison = run_ablations(cfg, progress=not no_progress)
    click.echo(format_comparison(comparison))
    _browse_hint(cfg)
    if failed:
        raise ChrombenchError("; ".join(f"worker {w.index} exited with {w.proc.returncode} (see {w.log})"
                                        for w in failed))


def _render_run(cfg) -> None:
    """The run's own leaderboard (every result under OUTPUT_DIR, nobody else's) and where things are."""
    from ..leaderboard.render import render

    out = Path(cfg.output_dir)
    try:
        page = render([out / "results"], out / "leaderboard", n_boot=200,
                      render_command=f"chrombench leaderboard render --results {out / 'results'} --out {out / 'leaderboard'}")
    except Exception as exc:  # the results are safe on disk; a page is a convenience
        click.echo(f"\n(could not render the leaderboard page: {type(exc).__name__}: {exc})", err=True)
        return
    click.echo(f"\nResults (one JSON record per model, task and seed): {out / 'results'}")
    click.echo(f"Leaderboard: {page.html} (also {page.markdown.name}, {page.csv.name})")


def _browse_hint(cfg) -> None:
    if cfg.tracking_uri:
        click.echo(f"\nRuns are tracked at {cfg.tracking_uri}")
    else:
        flag = "" if Path(cfg.output_dir) == DEFAULT_OUT else f" --output-dir {cfg.output_dir}"
        click.echo(f"\nBrowse the runs (MLflow UI):  chrombench ui{flag}")


@click.command()
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_OUT, show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
def ui(output_dir, port, host):
    """Start the MLflow UI on the local tracking store of OUTPUT_DIR (Ctrl-C stops it)."""
    from ..engine.tracking import local_uri

    db = Path(output_dir) / "mlflow.db"
    if not db.exists():
        raise ChrombenchError(f"no MLflow store at {db}; run `chrombench run --output-dir {output_dir}` first")
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", local_uri(output_dir),
           "--host", host, "--port", str(port)]
    click.echo(f"MLflow UI for {Path(output_dir).resolve()}: http://{host}:{port}", err=False)
    sys.stdout.flush()
    os.execv(sys.executable, cmd)  # become the server, so that signals reach it directly
