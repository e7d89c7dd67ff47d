"""``chrombench tasks``: the task registry on the command line."""

from __future__ import annotations

import json

import click

from ..tasks import all_specs, all_suites, get_spec, get_suite


@click.group()
def tasks():
    """List and inspect the 56 Roadmap Epigenomics cell-type tasks and the suites.

    \b
    Examples:
      chrombench tasks list
      chrombench tasks list --suite quick --format json
      chrombench tasks show E003
      chrombench tasks suites
    """


@tasks.command("list")
@click.option("--suite", default=None, help="Only the tasks of this suite (quick, roadmap56).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def list_tasks(suite, fmt):
    """One line per task: EID, cell type, Roadmap group, published DeepChrome AUROC."""
    specs = all_specs()
    eids = get_suite(suite).tasks if suite else list(specs)
    rows = [specs[e] for e in eids]
    if fmt == "json":
        click.echo(json.dumps([r.as_dict() for r in rows], indent=2))
        return
    click.echo(f"{'EID':<5} {'cell type':<55} {'group':<15} {'DeepChrome AUROC*':>17}")
    for r in rows:
        auc = r.reported_deepchrome_auroc
        click.echo(f"{r.eid:<5} {r.name:<55} {r.group:<15} {auc if auc is not None else '':>17}")
    click.echo(f"\n{len(rows)} tasks. *reported on the real REMC data (Singh et al., Bioinformatics 2016), "
               "not measured by chrombench.")


@tasks.command("show")
@click.argument("eid")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--data", "dataset", default=None, metavar="simremc@VERSION",
              help="Also show this simulator version's planted mechanisms and their share of the ceiling "
                   "(e.g. simremc@1.2; 1.1 has none).")
def show_task(eid, fmt, dataset):
    """Everything the registry knows about one task.

    \b
    Examples:
      chrombench tasks show E003
      chrombench tasks show E003 --data simremc@1.2   # + each planted mechanism's share of the ceiling
    """
    from ..data.layout import parse_simremc
    from ..data.load import normalise_eid

    spec = get_spec(normalise_eid(eid) or eid)
    sim = parse_simremc(dataset) if dataset else None
    if dataset and not sim:
        from ..errors import ChrombenchError

        raise ChrombenchError(f"--data {dataset!r}: mechanisms exist only for the simulator, e.g. --data simremc@1.2")
    mechanisms = None
    if sim and sim[0] != "1.1":
        from ..data.simulate12 import mechanism_table

        mechanisms = mechanism_table(spec.eid, spec.esc_like, spec.reported_deepchrome_auroc)
    if fmt == "json":
        click.echo(json.dumps({**spec.as_dict(), **({"simulated_mechanisms": mechanisms} if mechanisms else {})},
                              indent=2))
        return
    d = spec.as_dict()
    click.echo(f"{spec.eid}  {spec.name}")
    click.echo(f"  group:        {spec.group} ({spec.sample_type}){'; ESC-like (bivalent promoters)' if spec.esc_like else ''}")
    click.echo("  splits:       " + ", ".join(f"{k} {v}" for k, v in d["splits"].items()) + " genes")
    click.echo(f"  source:       Zenodo record {spec.source_record}, {spec.source_path}/{{train,valid,test}}.csv")
    click.echo(f"  weights:      Zenodo record 2616712, {spec.weights_file}")
    for r in spec.reported:
        click.echo(f"  reported:     {r.model} test AUROC {r.test_auroc} on the real data ({r.citation})")
    suites = [s.name for s in all_suites().values() if spec.eid in s.tasks]
    click.echo(f"  suites:       {', '.join(suites)}")
    if sim and not mechanisms:
        click.echo(f"  simremc {sim[0]}:  ceiling = published DeepChrome AUROC + 0.03; no planted mechanisms "
                   "(simremc@1.2 has them)")
    if mechanisms:
        click.echo(f"  simremc {sim[0]} (simulated, not real data): ceiling (oracle AUROC) "
                   f"{mechanisms[0]['ceiling']:.3f}; each term's share of the latent and the ceiling without it:")
        for row in mechanisms:
            click.echo(f"    {row['name']:<22} {row['share']:6.1%}  ceiling without it {row['ceiling_without']:.3f}"
                       f"  {row['term']}")


@tasks.command("suites")
def list_suites():
    """The named suites and what they contain."""
    for s in all_suites().values():
        size = ", ".join(f"{k} {v}" for k, v in s.genes.items()) + " genes per split" if s.genes else "full-size splits"
        protocol = ("hyperparameters: each model's defaults, held fixed across the tasks" if s.fixed
                    else "hyperparameters: tuned per model and task (Optuna)")
        seeds = f"seeds: {','.join(map(str, s.seeds))}"
        if s.dev_tasks:
            seeds += f" ({','.join(map(str, s.dev_seeds))} on the development tasks {' '.join(s.dev_tasks)})"
        click.echo(f"{s.name}: {len(s.tasks)} tasks, {size}\n  {protocol}; {seeds}\n  {s.description}\n"
                   f"  {' '.join(s.tasks)}")
