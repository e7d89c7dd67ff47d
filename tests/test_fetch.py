"""`chrombench data fetch` against a local stand-in for Zenodo: layout, unavailable tasks, resume,
checksum and truncation errors, unreachable servers."""

from __future__ import annotations

import hashlib
import io
import json
import re
import socket
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from chrombench.cli import main
from chrombench.data import catalog, fetch, importer, load
from chrombench.errors import ChrombenchError

RECORD = 2652278
KEY = "data.tar.gz"


class FakeZenodo:
    """A Zenodo records API on 127.0.0.1 serving ``files`` (key -> bytes), with HTTP Range.

    ``cut_first``: the first content request sends half the body, then closes the connection.
    ``truncate``: every content request sends half of what its headers promise.
    ``md5``: override the advertised checksum. ``link``: "self", "content" or None (no link).
    ``link_host``: the host the file links name (a mirror serving Zenodo's JSON unchanged: zenodo.org).
    """

    def __init__(self, files, *, cut_first=False, truncate=False, md5=None, link="self", version=None,
                 link_host=None):
        self.files, self.cut_first, self.truncate, self.md5, self.link = files, cut_first, truncate, md5, link
        self.version, self.link_host = version, link_host
        self.content_requests: list[dict] = []  # headers of each content request
        self.bytes_sent = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                fake.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def record_json(self) -> dict:
        entries = []
        for key, body in self.files.items():
            e = {"key": key, "size": len(body), "checksum": f"md5:{self.md5 or hashlib.md5(body).hexdigest()}"}
            if self.link:
                e["links"] = {self.link: f"{self.link_host or self.url}/api/records/{RECORD}/files/{key}/content"}
            entries.append(e)
        doc = {"id": RECORD, "files": entries, "metadata": {"title": "DeepChrome data"}}
        if self.version:
            doc["metadata"]["version"] = self.version
        return doc

    def handle(self, h: BaseHTTPRequestHandler):
        m = re.fullmatch(rf"/api/records/{RECORD}/files/(.+)/content", h.path)
        if h.path == f"/api/records/{RECORD}":
            body = json.dumps(self.record_json()).encode()
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        elif m and m.group(1) in self.files:
            data = self.files[m.group(1)]
            first = not self.content_requests
            self.content_requests.append(dict(h.headers))
            start = 0
            rng = re.fullmatch(r"bytes=(\d+)-", h.headers.get("Range", ""))
            if rng:
                start = int(rng.group(1))
                h.send_response(206)
                h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                h.send_response(200)
            body = data[start:]
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            if self.truncate or (self.cut_first and first):
                body = body[: len(body) // 2]
            h.wfile.write(body)
            self.bytes_sent += len(body)
            h.close_connection = True
        else:
            h.send_error(404)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def build_archive(root: Path, write_task_csvs, fmt: str = "tar.gz", top: str = "data") -> bytes:
    """The real layout under a top folder ``data/``: E003, E004, E116 with 20 genes per split,
    E005 with empty split files (as in the public archive)."""
    src = root / "src"
    for k, eid in enumerate(["E003", "E004", "E116"]):
        write_task_csvs(src / "data" / eid / "classification", n_genes=20, seed=k)
    empty = src / "data" / "E005" / "classification"
    empty.mkdir(parents=True)
    for s in ("train", "valid", "test"):
        (empty / f"{s}.csv").write_bytes(b"")
    buf = io.BytesIO()
    files = sorted(p for p in src.rglob("*") if p.is_file())
    if fmt == "zip":
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in files:
                zf.write(p, p.relative_to(src).as_posix())
    else:
        with tarfile.open(fileobj=buf, mode="w:gz") as tf:
            tf.add(src / "data", arcname=top)
    return buf.getvalue()


@pytest.fixture
def archive(tmp_path, write_task_csvs) -> bytes:
    return build_archive(tmp_path, write_task_csvs)


@pytest.fixture
def servers():
    started = []

    def start(files, **kw) -> FakeZenodo:
        started.append(FakeZenodo(files, **kw))
        return started[-1]

    yield start
    for s in started:
        s.close()


def run_cli(*args):
    return CliRunner().invoke(main, ["data", *args], catch_exceptions=False)


def downloads(home: Path) -> Path:
    return home / "downloads" / f"zenodo-{RECORD}"


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_fetch_selected_tasks_then_load_them_and_fetch_more_later(tmp_path, home, write_task_csvs, servers, fmt):
    key = f"data.{fmt}"
    server = servers({key: build_archive(tmp_path, write_task_csvs, fmt)})
    res = run_cli("fetch", "--tasks", "E003,e116", "--base-url", server.url)
    assert res.exit_code == 0, res.output
    assert re.search(r"E003\s+fetched\s+20\s+20\s+20", res.output)

    e003 = load.load_task("E003", dataset="remc")
    written = {s: np.loadtxt(tmp_path / "src" / "data" / "E003" / "classification" / f"{s}.csv",
                             delimiter=",", dtype=str) for s in ("train", "valid", "test")}
    assert list(e003.train.gene_ids) == list(dict.fromkeys(written["train"][:, 0]))  # zero-padded IDs kept
    np.testing.assert_array_equal(e003.test.X.reshape(-1, 5), written["test"][:, 2:7].astype(int))
    assert e003.dataset.name == "remc" and e003.dataset.version == str(RECORD) and not e003.dataset.simulated

    reg = json.loads((home / "registry.json").read_text())["datasets"]["remc"]
    assert sorted(reg["tasks"]) == ["E003", "E116"]  # E004 was not asked for
    assert not (Path(reg["path"]) / "E004").exists()
    info = run_cli("info", "remc")
    assert info.exit_code == 0 and "zenodo:2652278" in info.output
    assert re.search(r"E003\s+20\s+20\s+20", info.output) and "E116" in info.output

    # fetching more later adds to the dataset, from the cached archive (no second download)
    n_downloads = len(server.content_requests)
    res = run_cli("fetch", "--tasks", "E004,E003", "--base-url", server.url)
    assert res.exit_code == 0, res.output
    assert re.search(r"E003\s+cached", res.output) and re.search(r"E004\s+fetched", res.output)
    assert len(server.content_requests) == n_downloads
    reg2 = json.loads((home / "registry.json").read_text())["datasets"]["remc"]
    assert sorted(reg2["tasks"]) == ["E003", "E004", "E116"]
    assert reg2["tasks"]["E003"] == reg["tasks"]["E003"] and reg2["content_hash"] != reg["content_hash"]
    assert load.load_task("E004", dataset="remc").train.digest() != e003.train.digest()


def test_split_sizes_that_differ_from_the_spec_are_a_warning_not_an_error(archive, servers):
    server = servers({KEY: archive})
    res = CliRunner().invoke(main, ["data", "fetch", "--tasks", "E003", "--base-url", server.url])
    assert res.exit_code == 0
    assert "Warning: E003: genes per split (train 20, valid 20, test 20) differ from the documented 6601/6601/6600" \
        in res.stderr
    assert "E003" in catalog.read_registry()["datasets"]["remc"]["warnings"]


def test_empty_splits_make_a_task_unavailable_while_the_others_succeed(archive, servers):
    server = servers({KEY: archive})
    res = run_cli("fetch", "--tasks", "E003,E005", "--base-url", server.url)
    assert res.exit_code == 0, res.output
    assert re.search(r"E005\s+unavailable.*train\.csv, valid\.csv, test\.csv are empty", res.output)
    assert "1 of 2 tasks available" in res.output
    entry = catalog.read_registry()["datasets"]["remc"]
    assert list(entry["tasks"]) == ["E003"] and "empty" in entry["unavailable"]["E005"]
    with pytest.raises(ChrombenchError, match="E005 .* unavailable: .*empty"):
        load.load_task("E005", dataset="remc")
    assert len(load.load_task("E003", dataset="remc").train) == 20


def test_fetching_only_unavailable_tasks_fails_but_records_why(archive, servers):
    server = servers({KEY: archive})
    res = run_cli("fetch", "--tasks", "E005,E007", "--base-url", server.url)
    assert res.exit_code == 1
    assert "none of the requested tasks is available" in res.output
    assert re.search(r"E007\s+unavailable\s+.*not in the archive", res.output)
    assert set(catalog.read_registry()["datasets"]["remc"]["unavailable"]) == {"E005", "E007"}


@pytest.mark.parametrize("link", ["self", "content", None])
def test_zenodo_file_links_of_every_api_shape(archive, servers, link):
    server = servers({KEY: archive}, link=link, version="1.0")
    result = fetch.fetch_remc(["E116"], base=server.url, progress=False)
    assert result.fetched.keys() == {"E116"}
    assert result.entry["record_version"] == "1.0" and result.entry["version"] == str(RECORD)


def test_a_download_cut_half_way_resumes_with_a_range_request(home, archive, servers):
    server = servers({KEY: archive}, cut_first=True)
    res = run_cli("fetch", "--tasks", "E003", "--base-url", server.url)
    assert res.exit_code == 0, res.output
    assert "Range" not in server.content_requests[0]
    assert server.content_requests[1]["Range"] == f"bytes={len(archive) // 2}-"
    assert server.bytes_sent == len(archive)  # nothing downloaded twice
    assert (downloads(home) / KEY).read_bytes() == archive
    assert catalog.read_registry()["datasets"]["remc"]["files"][KEY]["md5"] == hashlib.md5(archive).hexdigest()


def test_an_existing_part_file_is_resumed(home, archive, servers):
    server = servers({KEY: archive})
    downloads(home).mkdir(parents=True)
    third = len(archive) // 3
    (downloads(home) / f"{KEY}.part").write_bytes(archive[:third])
    res = run_cli("fetch", "--tasks", "E003", "--base-url", server.url)
    assert res.exit_code == 0, res.output
    assert [r.get("Range") for r in server.content_requests] == [f"bytes={third}-"]
    assert server.bytes_sent == len(archive) - third
    assert not (downloads(home) / f"{KEY}.part").exists()


@pytest.fixture
def imported(tmp_path, write_task_csvs):
    """A registry that already holds something, so 'unchanged' is a meaningful check."""
    write_task_csvs(tmp_path / "mine", n_genes=10)
    importer.import_dataset(tmp_path / "mine", "mine")


def test_checksum_mismatch_names_the_file_and_both_md5s_and_changes_nothing(home, archive, servers, imported,
                                                                          snapshot_home):
    wrong = "0" * 32
    server = servers({KEY: archive}, md5=wrong)
    before = snapshot_home()
    res = run_cli("fetch", "--tasks", "E003", "--base-url", server.url)
    assert res.exit_code == 1
    assert f"checksum mismatch for {KEY}" in res.output
    assert wrong in res.output and hashlib.md5(archive).hexdigest() in res.output
    assert snapshot_home() == before
    assert list(downloads(home).iterdir()) == []  # a complete but wrong file cannot be resumed: deleted


def test_a_truncated_download_is_a_clear_error_and_keeps_the_prefix_for_resume(home, archive, servers, imported,
                                                                               snapshot_home):
    server = servers({KEY: archive}, truncate=True)
    before = snapshot_home()
    res = run_cli("fetch", "--tasks", "E003", "--base-url", server.url, "--retries", "1")
    assert res.exit_code == 1
    assert f"download of {KEY} is incomplete" in res.output
    assert f"of {len(archive)} bytes" in res.output and hashlib.md5(archive).hexdigest() in res.output
    assert snapshot_home() == before
    part = (downloads(home) / f"{KEY}.part").read_bytes()
    assert 0 < len(part) < len(archive) and archive.startswith(part)


def test_an_unreachable_server_is_a_clear_error(imported, snapshot_home):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    before = snapshot_home()
    res = run_cli("fetch", "--tasks", "E003", "--base-url", url)
    assert res.exit_code == 1
    assert f"Error: cannot reach {url}/api/records/{RECORD}" in res.output
    assert snapshot_home() == before


def test_the_base_url_comes_from_the_environment(monkeypatch, archive, servers):
    server = servers({KEY: archive})
    monkeypatch.setenv("CHROMBENCH_ZENODO_URL", server.url + "/")
    assert run_cli("fetch", "--tasks", "E003").exit_code == 0
    assert catalog.read_registry()["datasets"]["remc"]["base_url"] == server.url


def test_a_record_without_the_archive_layout_is_refused(home, servers):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "hello")
    server = servers({"data.zip": buf.getvalue()})
    res = run_cli("fetch", "--tasks", "E003", "--base-url", server.url)
    assert res.exit_code == 2
    assert "no <EID>/classification/{train,valid,test}.csv inside" in res.output and "readme.txt" in res.output
    assert sorted(p.name for p in home.iterdir()) == ["downloads"]  # no registry, no datasets folder


def test_fetch_needs_tasks():
    res = CliRunner().invoke(main, ["data", "fetch"])
    assert res.exit_code == 2 and "--tasks E003,E116 or take all 56 with --all" in res.output


def test_info_on_remc_before_any_fetch_says_how_to_fetch():
    res = run_cli("info", "remc")
    assert res.exit_code == 1 and "not been fetched yet" in res.output and "chrombench data fetch" in res.output


def test_tar_members_written_as_dot_slash_paths_are_found(tmp_path, write_task_csvs, servers):
    """`tar -czf x.tar.gz .` writes ./E003/classification/...: the leading "." is not a hidden folder."""
    server = servers({KEY: build_archive(tmp_path, write_task_csvs, top="./data")})
    res = run_cli("fetch", "--tasks", "E003", "--base-url", server.url)
    assert res.exit_code == 0, res.output
    assert load.load_task("E003", "remc").test.X.shape == (20, 100, 5)


def test_an_archive_damaged_upstream_is_named_and_changes_nothing(home, archive, servers, imported, snapshot_home):
    """Size and md5 match the record, but the file itself ends mid-stream: say which file, keep the cache."""
    before = snapshot_home()
    damaged = archive[: len(archive) * 2 // 3]
    server = servers({KEY: damaged})  # advertises the damaged file's own md5 and size
    res = run_cli("fetch", "--tasks", "E003,E116", "--base-url", server.url)
    assert res.exit_code == 2, res.output
    assert KEY in res.output and "damaged" in res.output and "Aborted" not in res.output
    assert "remc" not in catalog.read_registry()["datasets"]
    assert {k: v for k, v in snapshot_home().items() if "downloads" not in k} == \
        {k: v for k, v in before.items() if "downloads" not in k}


def test_a_mirror_serving_zenodos_json_unchanged_is_downloaded_from(archive, servers):
    """The record JSON still links to zenodo.org (unreachable here); the files come from --base-url."""
    server = servers({KEY: archive}, link_host="https://zenodo.org")
    res = run_cli("fetch", "--tasks", "E003", "--base-url", server.url)
    assert res.exit_code == 0, res.output
    assert len(server.content_requests) == 1


# -- hostile records (part of the bad-input corpus, see tests/test_bad_inputs.py) -------------------------------

def _with_link(server: FakeZenodo, url: str, size: int | None = None) -> None:
    original = server.record_json

    def crafted():
        doc = original()
        for e in doc["files"]:
            e["links"] = {"self": url}
            if size is not None:
                e["size"] = size
        return doc

    server.record_json = crafted


@pytest.mark.parametrize("link", ["file:///dev/zero", "ftp://127.0.0.1/data.tar.gz", "http://127.0.0.2:9/x.tar.gz",
                                  "javascript:alert(1)"])
def test_a_record_linking_outside_its_host_is_refused(home, archive, servers, snapshot_home, link):
    before = snapshot_home()
    server = servers({KEY: archive})
    _with_link(server, link)
    res = CliRunner().invoke(main, ["data", "fetch", "--tasks", "E003", "--base-url", server.url])
    assert res.exit_code != 0 and not isinstance(res.exception, (TypeError, AttributeError, KeyError))
    assert "only http(s) links on 127.0.0.1 are followed" in res.output and KEY in res.output
    assert not server.content_requests and snapshot_home() == before


def test_another_host_is_followed_only_when_allowed(archive, servers, monkeypatch):
    mirror = servers({KEY: archive})
    server = servers({KEY: archive})
    _with_link(server, f"http://localhost:{mirror.url.rsplit(':', 1)[1]}/api/records/{RECORD}/files/{KEY}/content")
    res = CliRunner().invoke(main, ["data", "fetch", "--tasks", "E003", "--base-url", server.url])
    assert res.exit_code != 0 and "localhost" in res.output
    monkeypatch.setenv("CHROMBENCH_FETCH_HOSTS", "localhost")
    res = CliRunner().invoke(main, ["data", "fetch", "--tasks", "E003", "--base-url", server.url])
    assert res.exit_code == 0, res.output
    assert len(mirror.content_requests) == 1 and not server.content_requests


def test_a_download_stops_at_the_advertised_size(home, archive, servers):
    """A server that sends more than the record says (or an endless stream) is read up to that size."""
    server = servers({KEY: archive})
    advertised = len(archive) // 3
    _with_link(server, f"{server.url}/api/records/{RECORD}/files/{KEY}/content", size=advertised)
    res = CliRunner().invoke(main, ["data", "fetch", "--tasks", "E003", "--base-url", server.url])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert "md5" in res.output or "damaged" in res.output
    kept = list(downloads(home).glob("*"))
    assert all(p.stat().st_size <= advertised for p in kept if p.is_file())


def test_a_failed_later_fetch_keeps_the_tasks_fetched_before(home, archive, servers):
    good = servers({KEY: archive})
    assert run_cli("fetch", "--tasks", "E003", "--base-url", good.url).exit_code == 0
    before = catalog.read_registry()["datasets"]["remc"]["tasks"]["E003"]
    folder = Path(catalog.read_registry()["datasets"]["remc"]["path"]) / "E003"
    broken = servers({KEY: archive[: len(archive) * 2 // 3]})  # damaged mid-stream, its own md5
    res = CliRunner().invoke(main, ["data", "fetch", "--tasks", "E116", "--base-url", broken.url, "--force"])
    assert res.exit_code != 0 and "damaged" in res.output
    reg = catalog.read_registry()["datasets"]["remc"]
    assert reg["tasks"]["E003"] == before and "E116" not in reg["tasks"] and folder.is_dir()
    assert load.load_task("E003", "remc").dataset.content_hash
