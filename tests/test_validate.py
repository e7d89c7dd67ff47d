"""Submission bundles: a good one passes; every kind of rejection names the file and the reason.

Most tests build bundles from synthetic sealed records and check dataset hashes against a stand-in
registry; one test uses the real registry (the simulator regenerates the quick suite's tasks) and
the command line, and one runs ``chrombench submit`` end to end through the engine.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from chrombench import results
from chrombench.cli import main
from chrombench.data.layout import simremc_version
from chrombench.leaderboard import validate as v
from chrombench.leaderboard.submit import RecordingTrial, model_card, search_space_of, write_bundle
from chrombench.tasks import get_suite

QUICK = list(get_suite("quick").tasks)  # E003, E112, E123
VERSION = simremc_version()  # the simulator's current one


@pytest.fixture(scope="module")
def home(shared_home):
    """The session's shared CHROMBENCH_HOME, so the simulator generates the quick tasks once."""
    return shared_home


def fake_registry(hashes: dict | None = None, version: str = VERSION):
    """A stand-in for the dataset registry: the hash synthetic_records gives each task."""
    import hashlib

    def lookup(task, dataset, genes):
        return version, (hashes or {}).get(task) or hashlib.sha256(f"{dataset}/{task}".encode()).hexdigest()

    return lookup


class Submitted:
    """A submitted model class, for the model card."""

    family = "test"

    @classmethod
    def search_space(cls, trial):
        return {"lr": trial.suggest_float("lr", 1e-3, 1.0, log=True)}


def make_bundle(root: Path, records_factory, name="my-model", tasks=QUICK, seeds=3, extra=None, suite="quick",
                smoke_test=False, **kw) -> Path:
    """``seeds``: a count for every task, or a function task -> count (roadmap56's per-task policy)."""
    from conftest import write_records

    count = seeds if callable(seeds) else (lambda task: seeds)
    recs = records_factory({name: {t: [round(0.8 + 0.01 * k, 2) for k in range(count(t))] for t in tasks}},
                           suite=suite, **kw)
    for r in recs:
        if extra:
            extra(r)
    import tempfile

    run = Path(tempfile.mkdtemp(prefix="run-", dir=root.parent))  # outside root: not a loose record there
    write_records(run, recs, predictions=True)  # as the engine leaves them: predictions beside seeds
    recs = results.read_records(run / "results")
    card = model_card(Submitted, f"{name}.py:Submitted", name, recs, suite, wall_time_s=1.0, trials=4, timeout=None)
    return write_bundle(root / name, name, f"{name}.py:Submitted", suite, recs, card, command="chrombench submit ...",
                        smoke_test=smoke_test)


def reasons(report, file_part: str) -> list[str]:
    return [r.reason for r in report.rejections if file_part in r.file]


def test_a_complete_bundle_passes(tmp_path, records_factory):
    bundle = make_bundle(tmp_path, records_factory)
    report = v.validate_bundle(bundle, fake_registry())
    assert report.ok, report.rejections
    assert report.n_records == len(QUICK) * 4 and report.name == "my-model"
    manifest = json.loads((bundle / "bundle.json").read_text())
    assert manifest["suite"] == "quick" and manifest["seeds"] == [0, 1, 2]
    assert manifest["protocol_version"] == results.PROTOCOL_VERSION
    assert manifest["records_digest"] == v.records_digest(manifest["records"].values())
    card = (bundle / "MODEL_CARD.md").read_text()
    assert "A submitted model class" in card and "| lr | FloatDistribution(" in card and "| E003 | 0.8100 |" in card


def test_schema_violation(tmp_path, records_factory):
    def negative_parameters(rec):  # violates "minimum": 0, resealed so the digest itself is fine
        if rec["task"]["name"] == "E112" and rec["kind"] == "summary":
            rec["model"]["n_parameters"] = -5
            rec["digest"] = results.compute_digest(rec)

    report = v.validate_bundle(make_bundle(tmp_path, records_factory, extra=negative_parameters), fake_registry())
    assert not report.ok
    assert [r.file for r in report.rejections] == [str(tmp_path / "my-model/records/E112/summary.json")]
    assert "schema violation" in report.rejections[0].reason and "n_parameters" in report.rejections[0].reason


def test_record_edited_by_hand(tmp_path, records_factory):
    bundle = make_bundle(tmp_path, records_factory)
    f = bundle / "records/E003/seed-1.json"
    rec = json.loads(f.read_text())
    rec["metrics"]["test"]["auroc"] = 0.99
    f.write_text(json.dumps(rec, indent=2))
    report = v.validate_bundle(bundle, fake_registry())
    assert reasons(report, "E003/seed-1.json") == [
        "digest does not match the contents: the record was modified after it was written"]
    assert len(report.rejections) == 1


def test_dataset_hash_differs_from_the_registry(tmp_path, records_factory):
    bundle = make_bundle(tmp_path, records_factory)
    report = v.validate_bundle(bundle, fake_registry({"E112": "f" * 64}))
    assert {Path(r.file).parent.name for r in report.rejections} == {"E112"}
    assert len(report.rejections) == 4  # three seeds and the summary
    assert all("does not match the registry's ffffffffffff" in r.reason for r in report.rejections)
    report = v.validate_bundle(bundle, fake_registry(version="2.0+seed0"))
    assert len(report.rejections) == 12 and "the registry has '2.0+seed0'" in report.rejections[0].reason


def test_wrong_protocol_version(tmp_path, records_factory):
    def old_protocol(rec):
        rec["protocol_version"] = "chrombench-protocol-0.9"
        rec["digest"] = results.compute_digest(rec)

    bundle = make_bundle(tmp_path, records_factory, extra=old_protocol)
    manifest = json.loads((bundle / "bundle.json").read_text())
    manifest["protocol_version"] = "chrombench-protocol-0.9"
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    report = v.validate_bundle(bundle, fake_registry())
    assert len(report.rejections) == 1 + 12
    assert all("protocol version 'chrombench-protocol-0.9'" in r.reason for r in report.rejections)
    assert reasons(report, "bundle.json")


def test_missing_task(tmp_path, records_factory):
    report = v.validate_bundle(make_bundle(tmp_path, records_factory, tasks=["E003", "E112"]), fake_registry())
    assert [(Path(r.file).name, r.reason) for r in report.rejections] == [
        ("E123", "task E123 of suite 'quick' is missing")]


def test_too_few_seeds(tmp_path, records_factory):
    report = v.validate_bundle(make_bundle(tmp_path, records_factory, seeds=2), fake_registry())
    assert len(report.rejections) == 3
    assert all("2 seeds [0, 1]; at least 3 are required" in r.reason for r in report.rejections)


def test_declared_seed_count_and_consistency_across_tasks(tmp_path, records_factory):
    bundle = make_bundle(tmp_path, records_factory)
    manifest = json.loads((bundle / "bundle.json").read_text())
    manifest["n_seeds"] = 5
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    report = v.validate_bundle(bundle, fake_registry())
    assert len(report.rejections) == 3 and "(declared n_seeds)" in report.rejections[0].reason

    def shift_seed_on_e112(rec):  # E112 ran seeds 0, 1, 3 while the others ran 0, 1, 2
        if rec["task"]["name"] == "E112":
            if rec["kind"] == "seed" and rec["seed"] == 2:
                rec["seed"] = 3
            if rec["kind"] == "summary":
                rec["seeds"] = [0, 1, 3]
            rec["digest"] = results.compute_digest(rec)

    bundle = make_bundle(tmp_path / "b", records_factory, extra=shift_seed_on_e112)
    manifest = json.loads((bundle / "bundle.json").read_text())
    manifest["seeds"], manifest["n_seeds"] = [0, 1, 2], 3  # as declared by the submitter
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    report = v.validate_bundle(bundle, fake_registry())
    assert [(Path(r.file).name, r.reason) for r in report.rejections] == [
        ("E112", "seeds [0, 1, 3] differ from the bundle's seeds [0, 1, 2]: every task must use the same seeds")]


def test_record_added_after_the_bundle_was_made(tmp_path, records_factory):
    bundle = make_bundle(tmp_path, records_factory)
    extra = records_factory({"my-model": {"E003": [0.8, 0.8, 0.8, 0.95]}})
    lucky = next(r for r in extra if r["kind"] == "seed" and r["seed"] == 3)
    results.atomic_write_json(bundle / "records/E003/seed-3.json", lucky)
    report = v.validate_bundle(bundle, fake_registry())
    assert reasons(report, "E003/seed-3.json")[0] == \
        "not listed in bundle.json: a record was added after the bundle was made"


def test_record_removed_after_the_bundle_was_made(tmp_path, records_factory):
    bundle = make_bundle(tmp_path, records_factory)
    (bundle / "records/E123/seed-0.json").unlink()
    report = v.validate_bundle(bundle, fake_registry())
    assert reasons(report, "E123/seed-0.json") == [
        "listed in bundle.json but missing: a record was removed after the bundle was made"]


def test_manifest_list_edited_by_hand(tmp_path, records_factory):
    bundle = make_bundle(tmp_path, records_factory)
    manifest = json.loads((bundle / "bundle.json").read_text())
    del manifest["records"]["records/E123/seed-0.json"]  # the record dropped and the list "fixed"
    (bundle / "records/E123/seed-0.json").unlink()
    manifest["seeds"], manifest["n_seeds"] = [0, 1, 2], 3
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    report = v.validate_bundle(bundle, fake_registry())
    assert any("records_digest does not match" in r.reason and r.file.endswith("bundle.json")
               for r in report.rejections)


def test_replaced_record_and_unreadable_manifest(tmp_path, records_factory):
    bundle = make_bundle(tmp_path, records_factory)
    other = make_bundle(tmp_path / "other", records_factory, seeds=4)  # a validly sealed, different record
    shutil.copyfile(other / "records/E003/summary.json", bundle / "records/E003/summary.json")
    report = v.validate_bundle(bundle, fake_registry())
    assert "digest differs from the one in bundle.json: the record was replaced" in reasons(report, "E003/summary.json")
    (bundle / "bundle.json").write_text("{not json")
    report = v.validate_bundle(bundle, fake_registry())
    assert len(report.rejections) == 1 and "cannot read the manifest" in report.rejections[0].reason


def test_real_registry_hashes_and_the_command_line(tmp_path, records_factory, home):
    """Hashes recomputed by the dataset registry (simremc, quick-suite genes); exit codes 0 and 1."""
    from chrombench.data.load import load_task

    from real_bundles import honest_bundle

    honest_bundle(tmp_path / "lb", "good", [load_task(t, "simremc", quick=True) for t in QUICK], suite="quick")
    runner = CliRunner()
    res = runner.invoke(main, ["leaderboard", "validate", str(tmp_path / "lb")])
    assert res.exit_code == 0, res.output
    assert "OK" in res.output and "1 of 1 bundles accepted" in res.output

    # the same model measured on the full-size tasks: right dataset, wrong genes for the quick suite
    full = {t: load_task(t, "simremc").dataset.content_hash for t in QUICK}
    make_bundle(tmp_path / "lb", records_factory, name="full-size", content_hashes=full)
    res = runner.invoke(main, ["leaderboard", "validate", str(tmp_path / "lb")])
    assert res.exit_code == 1
    assert "REJECTED" in res.output and "1 of 2 bundles accepted" in res.output
    assert f"{tmp_path / 'lb/full-size/records/E003/summary.json'}: dataset content hash" in res.output

    res = runner.invoke(main, ["leaderboard", "validate", str(tmp_path / "empty-dir")])
    assert res.exit_code == 1 and "no bundle found" in res.output


def test_search_space_is_recorded_as_optuna_distributions():
    from chrombench.models.registry import get_model_class

    class Toy:
        @classmethod
        def search_space(cls, trial):
            kind = trial.suggest_categorical("kind", ["a", "b"])
            return {"lr": trial.suggest_float("lr", 1e-4, 1e-1, log=True), "kind": kind,
                    "depth": trial.suggest_int("depth", 2, 8, step=2)}

    space = search_space_of(Toy)
    assert space["lr"] == {"name": "FloatDistribution",
                           "attributes": {"low": 1e-4, "high": 1e-1, "log": True, "step": None}}
    assert space["kind"]["attributes"]["choices"] == ["a", "b"]
    assert space["depth"]["attributes"] == {"low": 2, "high": 8, "log": False, "step": 2}
    trial = RecordingTrial()
    assert Toy.search_space(trial) == {"lr": 1e-4, "kind": "a", "depth": 2}  # valid values to build a model
    lr = get_model_class("logistic-regression")
    assert "C" in search_space_of(lr)


@pytest.mark.slow
def test_submit_end_to_end_writes_a_bundle_that_validates(tmp_path, home, monkeypatch):
    import chrombench.engine.run  # noqa: F401 - submit runs the engine: an import error fails here, never skips

    shutil.copy(Path(__file__).with_name("toy_plugin.py"), tmp_path / "third_party.py")
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["submit", "third_party.py:PromoterMeans", "--name", "mark-means", "--trials", "1",
                                    "--seeds", "0-2"])
    assert res.exit_code == 0, res.output
    bundle = tmp_path / "leaderboards/submissions/mark-means"
    assert "Validated" in res.output
    card = json.loads((bundle / "model_card.json").read_text())
    assert card["description"].lower().startswith("least squares") and card["search_space"]["l2"]["attributes"]["log"]
    assert set(card["n_parameters"]) == set(QUICK) and card["dataset"]["name"] == "simremc"
    assert "Model card: mark-means" in (bundle / "MODEL_CARD.md").read_text()
    assert v.validate_bundle(bundle).ok
    res = CliRunner().invoke(main, ["leaderboard", "validate"])
    assert res.exit_code == 0 and "mark-means" in res.output
    res = CliRunner().invoke(main, ["leaderboard", "render", "--out", "lb"])  # your own run only: none here
    assert res.exit_code == 0 and "mark-means" not in (tmp_path / "lb/leaderboard.md").read_text()
    res = CliRunner().invoke(main, ["leaderboard", "render", "--out", "lb", "--results", "leaderboards/submissions"])
    assert res.exit_code == 0 and "| 1 | mark-means |" in (tmp_path / "lb/leaderboard.md").read_text()


def test_predictions_edited_or_a_resealed_summary_are_caught(tmp_path, records_factory):
    """Digests stop edits by hand, not a resealed record: the numbers are recomputed from below."""
    bundle = make_bundle(tmp_path, records_factory)
    import gzip

    csv = bundle / "records/E112/seed-0.predictions.csv.gz"  # bundles keep predictions gzipped
    lines = gzip.decompress(csv.read_bytes()).decode().splitlines()
    csv.write_bytes(gzip.compress(("\n".join(lines[:1] + [ln.rsplit(",", 1)[0] + ",1" for ln in lines[1:]])
                                   + "\n").encode()))  # all ON
    summary = bundle / "records/E003/summary.json"
    rec = json.loads(summary.read_text())
    rec["metrics"]["test_auroc"]["mean"] = 0.99
    rec["digest"] = results.compute_digest(rec)  # resealed with the public code
    summary.write_text(json.dumps(rec))
    report = v.validate_bundle(bundle, fake_registry())
    assert "sha256 differs from the one in bundle.json: the predictions were edited" in \
        reasons(report, "E112/seed-0.predictions.csv.gz")
    assert any("does not follow from the seed records" in r for r in reasons(report, "E003/summary.json"))


@pytest.mark.parametrize("damage,expected", [
    (lambda lines: lines[:5] + [lines[5].rsplit(",", 1)[0]] + lines[6:], "line 6 has 2 fields, the header 3"),
    (lambda lines: ["gene_id,probability"] + [ln.rsplit(",", 1)[0] for ln in lines[1:]], "no column label"),
    (lambda lines: lines[:3] + [lines[3].split(",")[0] + ",high,1"] + lines[4:], "could not convert string to float"),
])
def test_a_damaged_predictions_file_is_named_with_what_is_wrong(tmp_path, records_factory, damage, expected):
    import gzip

    bundle = make_bundle(tmp_path, records_factory)
    csv = bundle / "records/E112/seed-0.predictions.csv.gz"
    lines = gzip.decompress(csv.read_bytes()).decode().splitlines()
    csv.write_bytes(gzip.compress(("\n".join(damage(lines)) + "\n").encode()))
    why = reasons(v.validate_bundle(bundle, fake_registry()), "E112/seed-0.predictions.csv.gz")
    assert any("cannot be read as gene_id,probability,label" in r and expected in r for r in why), why


def test_a_resealed_seed_record_must_match_its_predictions(tmp_path, records_factory):
    bundle = make_bundle(tmp_path, records_factory)
    f = bundle / "records/E123/seed-2.json"
    rec = json.loads(f.read_text())
    rec["metrics"]["test"]["auroc"] = 0.97
    rec["digest"] = results.compute_digest(rec)
    f.write_text(json.dumps(rec))
    report = v.validate_bundle(bundle, fake_registry())
    assert any("test AUROC 0.970000 does not follow from seed-2.predictions.csv.gz (0.820000)" in r
               for r in reasons(report, "E123/seed-2.json"))


def test_validating_bundles_and_their_page_validates_each_bundle_once_with_the_given_lookup(
        tmp_path, records_factory, synthetic_data_only, monkeypatch):
    """A page is checked by rendering it again from its bundles: from the reports ``validate_paths``
    already has, made with its lookup, not by validating every bundle a second time (with the registry's
    own lookup, which would refuse these synthetic records and so call their page stale)."""
    import functools

    from chrombench.leaderboard.render import render

    lb = tmp_path / "lb"
    make_bundle(lb, records_factory, name="first")
    make_bundle(lb, records_factory, name="second")
    stand_in = fake_registry()
    render([lb], lb / "page", n_boot=0, title="t",
           validate=functools.partial(v.validate_bundle, lookup=stand_in))
    calls = []
    real = v.validate_bundle
    monkeypatch.setattr(v, "validate_bundle", lambda b, lookup=v.registry_hash: calls.append(b) or real(b, lookup))
    reports = v.validate_paths([lb], stand_in)
    assert sorted((r.name, r.ok) for r in reports) == [("(rendered page)", True), ("first", True), ("second", True)]
    assert sorted(b.name for b in calls) == ["first", "second"]  # once each, for the bundles and the page together


def test_records_outside_any_bundle_are_rejected(tmp_path, records_factory, records_writer):
    make_bundle(tmp_path / "lb", records_factory)
    records_writer(tmp_path / "lb" / "sneaky", records_factory({"sneaky": {"E003": [0.99, 0.99, 0.99]}}))
    reports = v.validate_paths([tmp_path / "lb"], fake_registry())
    bad = [r for r in reports if not r.ok]
    assert len(bad) == 1 and bad[0].name == "(records outside any bundle)"
    assert all("outside any bundle" in r.reason and "/sneaky/" in r.file for r in bad[0].rejections)
    assert len(bad[0].rejections) == 4


def test_render_shows_only_the_bundles_that_validate(tmp_path, records_factory, home):
    from chrombench.data.load import load_task
    from chrombench.leaderboard.render import render

    from real_bundles import honest_bundle

    honest_bundle(tmp_path / "lb", "good", [load_task(t, "simremc", quick=True) for t in QUICK], suite="quick")
    make_bundle(tmp_path / "lb", records_factory, name="forged", content_hashes={t: "f" * 64 for t in QUICK})
    md = render([tmp_path / "lb"], tmp_path / "page", n_boot=0).markdown.read_text()
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert any("| good |" in r for r in table) and not any("forged" in r for r in table)
    left_out = md.split("## Records left out", 1)[1]
    assert f"`{tmp_path / 'lb' / 'forged'}`: bundle rejected by" in left_out and "leaderboard validate" in left_out


@pytest.mark.parametrize("metric,value,label", [("auprc", 0.99, "AUPRC"), ("accuracy", 0.98, "accuracy")])
def test_every_test_metric_is_recomputed_from_the_predictions(tmp_path, records_factory, metric, value, label):
    """Not only AUROC: an edited and resealed AUPRC or accuracy is caught too."""
    bundle = make_bundle(tmp_path, records_factory)
    f = bundle / "records/E003/seed-1.json"
    rec = json.loads(f.read_text())
    rec["metrics"]["test"][metric] = value
    rec["digest"] = results.compute_digest(rec)
    f.write_text(json.dumps(rec))
    why = reasons(v.validate_bundle(bundle, fake_registry()), "E003/seed-1.json")
    assert any(f"test {label} {value:.6f} does not follow from seed-1.predictions.csv.gz" in r for r in why), why


def test_predictions_that_are_symlinks_are_refused(tmp_path, records_factory):
    bundle = make_bundle(tmp_path, records_factory)
    target = bundle / "records/E112/seed-0.predictions.csv.gz"
    outside = tmp_path / "elsewhere.csv.gz"
    outside.write_bytes(target.read_bytes())
    target.unlink()
    target.symlink_to(outside)  # same bytes, so the sha256 would match: the link itself is refused
    why = reasons(v.validate_bundle(bundle, fake_registry()), "E112/seed-0.predictions.csv.gz")
    assert any("a symlink or a file outside the bundle" in r for r in why), why


def test_a_simremc_1_2_bundle_is_checked_against_1_2s_data_not_1_1s(tmp_path, records_factory,
                                                                    synthetic_data_only, monkeypatch):
    """A record stores the simulator's version apart from the name ("simremc", "1.2+seed0"): the hash and
    trusted-split checks must regenerate 1.2, or every 1.2 bundle is refused as 1.1's data."""
    from chrombench.leaderboard import trust

    def on_1_2(rec):
        rec["dataset"]["version"] = "1.2+seed0"
        rec["digest"] = results.compute_digest(rec)

    asked, trusted = [], []
    fake = fake_registry(version="1.2+seed0")

    def lookup(task, dataset, genes):
        asked.append(dataset)
        return fake(task, "simremc", genes)  # the hash synthetic_records gave the record

    real_split = trust._registry_split
    monkeypatch.setattr(trust, "_registry_split", lambda task, dataset, *a: trusted.append(dataset) or real_split(
        task, dataset, *a))
    report = v.validate_bundle(make_bundle(tmp_path, records_factory, extra=on_1_2), lookup)
    assert report.ok, report.rejections
    assert set(asked) == {"simremc@1.2"} and set(trusted) == {"simremc@1.2"}


def test_a_record_names_the_data_load_task_gives_back():
    from chrombench.data.layout import dataset_spec

    assert dataset_spec("simremc", "1.1+seed0") == "simremc"
    assert dataset_spec("simremc", "1.2+seed0") == "simremc@1.2"
    assert dataset_spec("simremc", "1.2+seed0", "chromosome") == "simremc@1.2:chromosome"
    assert dataset_spec("my-lab-cells", "2026-01", "chromosome") == "my-lab-cells"  # its own registry entry
