"""The data commands against hostile servers and a hostile machine (issue 31): fetch reads every
response up to a limit and follows redirects only to allowed hosts, a failed fetch leaves what was
registered; `data remove`; labelled, name-free dataset hashes; one clear line, never a traceback,
for what the operating system refuses; a lab's own dataset is not "real data" on its page.

Servers are real HTTP servers on 127.0.0.1, as in test_fetch.py.
"""

from __future__ import annotations

import errno
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from chrombench.cli import main
from chrombench.data import catalog, fetch, layout, load
from chrombench.safepath import identifier
from test_fetch import KEY, RECORD, archive, servers  # noqa: F401 - fixtures
from toydata import TOY


class Raw:
    """An HTTP server on 127.0.0.1 answering each path with ``routes[path](handler)``."""

    def __init__(self, routes: dict):
        self.routes, self.hits = routes, []
        raw = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                raw.hits.append(self.path)
                answer = raw.routes.get(self.path)
                if answer is None:
                    self.send_error(404)
                else:
                    answer(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def raw():
    started = []

    def start(routes):
        started.append(Raw(routes))
        return started[-1]

    yield start
    for s in started:
        s.close()


def body(data: bytes, status: int = 200, length: int | None = None):
    def answer(h):
        h.send_response(status)
        h.send_header("Content-Length", str(len(data) if length is None else length))
        h.end_headers()
        h.wfile.write(data)
    return answer


def endless(h):
    h.send_response(200)  # HTTP/1.0, no Content-Length: the body runs until the server closes
    h.end_headers()
    block = b'{"files": [' + b" " * (1 << 20)
    try:
        while True:
            h.wfile.write(block)
    except OSError:
        pass


def redirect(to: str):
    def answer(h):
        h.send_response(302)
        h.send_header("Location", to)
        h.send_header("Content-Length", "0")
        h.end_headers()
    return answer


def fetch_cli(*args, env=None):
    return CliRunner(env=env).invoke(main, ["data", "fetch", "--tasks", "E003", *args])


def one_clear_line(res, code=1) -> str:
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output and res.exception is None or isinstance(res.exception, SystemExit)
    return res.output


# -- fetch: sizes --------------------------------------------------------------------------------------------

def test_an_endless_record_answer_is_cut_at_the_limit_and_named(raw, snapshot_home):
    server = raw({f"/api/records/{RECORD}": endless})
    before = snapshot_home()
    out = one_clear_line(fetch_cli("--base-url", server.url))
    assert f"{server.url}/api/records/{RECORD} sent more than {fetch.MAX_RECORD_BYTES:,} bytes" in out
    assert snapshot_home() == before


def test_a_record_answer_dripping_a_byte_at_a_time_is_cut_at_the_deadline(raw, monkeypatch):
    import time

    def drip(h):
        h.send_response(200)
        h.end_headers()
        try:
            for _ in range(2000):  # 100 s at most, long after the test's 1 s deadline
                h.wfile.write(b" ")
                h.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass

    monkeypatch.setattr(fetch, "RECORD_DEADLINE_S", 1)
    server = raw({f"/api/records/{RECORD}": drip})
    started = time.monotonic()
    out = one_clear_line(fetch_cli("--base-url", server.url))
    assert "took more than 1 s" in out and time.monotonic() - started < 60  # not the drip's 100 s


def test_a_record_answer_declaring_a_huge_length_is_refused_before_reading(raw):
    server = raw({f"/api/records/{RECORD}": body(b"{}", length=10**12)})
    out = one_clear_line(fetch_cli("--base-url", server.url))
    assert "1,000,000,000,000 bytes" in out and f"{fetch.MAX_RECORD_BYTES:,}" in out


def test_a_file_larger_than_the_download_limit_is_refused_before_downloading(archive, servers, snapshot_home):
    server = servers({KEY: archive})
    before = snapshot_home()
    out = one_clear_line(fetch_cli("--base-url", server.url, env={"CHROMBENCH_FETCH_MAX_BYTES": "1000"}))
    assert KEY in out and f"{len(archive):,} bytes" in out and "1,000" in out and "CHROMBENCH_FETCH_MAX_BYTES" in out
    assert not server.content_requests and snapshot_home() == before


def test_an_archive_member_unpacking_past_the_limit_is_refused(archive, servers, snapshot_home, monkeypatch):
    monkeypatch.setattr(fetch, "MAX_MEMBER_BYTES", 1000)  # the toy splits are ~60 kB; the real limit is 2 GiB
    server = servers({KEY: archive})
    before = snapshot_home()
    out = one_clear_line(fetch_cli("--base-url", server.url), code=2)
    assert "unpacks to more than 1,000 bytes" in out and "E003/classification" in out
    assert snapshot_home() == before


@pytest.mark.parametrize("doc", [b"[1, 2]", b'{"files": ["a.zip"]}', b'{"files": {"entries": 5}}',
                                 b"[" * 100_000 + b"]" * 100_000, b'{"files": [{"key": "a.zip", "size": "big", '
                                 b'"checksum": "md5:' + b"0" * 32 + b'"}]}',
                                 b'{"files": [{"key": "a.zip", "size": -1, "checksum": "md5:' + b"0" * 32 + b'"}]}',
                                 b'{"files": [{"key": "a.zip", "size": true, "checksum": "md5:' + b"0" * 32 + b'"}]}',
                                 b"\xff\xfe"])
def test_a_malformed_record_is_one_line(raw, doc, snapshot_home):
    server = raw({f"/api/records/{RECORD}": body(doc)})
    before = snapshot_home()
    out = one_clear_line(fetch_cli("--base-url", server.url))
    assert out.startswith("Error: ") and out.count("\n") == 1 and str(RECORD) in out
    assert snapshot_home() == before


# -- fetch: redirects ------------------------------------------------------------------------------------------

def test_a_redirect_of_the_record_to_another_host_is_refused_unless_allowed(archive, servers, raw):
    target = servers({KEY: archive})
    port = target.url.rsplit(":", 1)[1]
    hop = raw({f"/api/records/{RECORD}": redirect(f"http://localhost:{port}/api/records/{RECORD}")})
    out = one_clear_line(fetch_cli("--base-url", hop.url))
    assert "redirects (HTTP 302)" in out and "localhost" in out and "CHROMBENCH_FETCH_HOSTS" in out
    assert layout.REMC not in catalog.read_registry()["datasets"]
    res = fetch_cli("--base-url", hop.url, env={"CHROMBENCH_FETCH_HOSTS": "localhost"})
    assert res.exit_code == 0, res.output
    assert load.load_task("E003", "remc").train.X.shape[1:] == (100, 5)


def test_a_redirect_of_a_download_to_another_host_is_refused(archive, servers, raw, snapshot_home):
    target = servers({KEY: archive})
    port = target.url.rsplit(":", 1)[1]
    hop = raw({"/file": redirect(f"http://localhost:{port}/api/records/{RECORD}/files/{KEY}/content")})
    server = servers({KEY: archive})
    original = server.record_json

    def linked_to_hop():
        doc = original()
        doc["files"][0]["links"] = {"self": f"{hop.url}/file"}  # same host as the base: allowed; its 302 is not
        return doc

    server.record_json = linked_to_hop
    before = snapshot_home()
    out = one_clear_line(fetch_cli("--base-url", server.url))
    assert f"{hop.url}/file redirects (HTTP 302)" in out and "localhost" in out
    assert not target.content_requests and snapshot_home() == before


# -- fetch: a failure changes nothing registered ------------------------------------------------------------------

def test_a_failed_fetch_of_another_record_keeps_the_registered_remc(archive, servers, raw, home):
    good = servers({KEY: archive})
    assert fetch_cli("--base-url", good.url).exit_code == 0
    registry = layout.registry_path().read_bytes()
    other = 999
    doc = {"files": [{"key": KEY, "size": len(archive), "checksum": f"md5:{hashlib.md5(archive).hexdigest()}",
                      "links": {"self": "/archive"}}]}  # relative: resolved on the base URL
    server = raw({f"/api/records/{other}": body(json.dumps(doc).encode()), "/archive": body(archive)})
    # E005's splits are empty in the archive: the fetch yields nothing usable
    res = CliRunner().invoke(main, ["data", "fetch", "--tasks", "E005", "--record", str(other), "--base-url", server.url])
    out = one_clear_line(res)
    assert "none of the requested tasks is available" in out and f"Zenodo record {RECORD}" in out
    assert layout.registry_path().read_bytes() == registry
    assert len(load.load_task("E003", "remc").train) == 20
    missing = raw({})  # a record that does not exist: also nothing changes
    res = CliRunner().invoke(main, ["data", "fetch", "--tasks", "E116", "--record", "998", "--base-url", missing.url])
    assert res.exit_code == 1 and "not found" in res.output and layout.registry_path().read_bytes() == registry


# -- data remove ----------------------------------------------------------------------------------------------

def _import(name: str):
    res = CliRunner().invoke(main, ["data", "import", str(TOY), "--name", name])
    assert res.exit_code == 0, res.output
    return res


def test_remove_unregisters_and_deletes_only_that_dataset():
    _import("first")
    _import("second")
    folder = Path(catalog.read_registry()["datasets"]["first"]["path"])
    keep = load.load_task("second").dataset.content_hash
    res = CliRunner().invoke(main, ["data", "remove", "first"])
    assert res.exit_code == 0 and "Removed dataset 'first'" in res.output
    assert "first" not in catalog.read_registry()["datasets"] and not folder.exists() and not folder.parent.exists()
    assert load.load_task("second").dataset.content_hash == keep
    assert not [p for p in layout.datasets_dir().iterdir() if p.name.startswith(".")]  # nothing left aside


def test_remove_names_unknown_datasets_with_a_suggestion_and_refuses_the_simulator(snapshot_home):
    _import("mycells")
    before = snapshot_home()
    res = CliRunner().invoke(main, ["data", "remove", "mycell"])
    assert res.exit_code == 2 and "did you mean 'mycells'" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(main, ["data", "remove", "simremc"])
    assert res.exit_code == 1 and "built-in simulator" in res.output
    assert snapshot_home() == before


def test_remove_is_atomic_when_the_registry_cannot_be_written(monkeypatch, snapshot_home):
    """A full disk while rewriting registry.json: the dataset stays registered and whole."""
    _import("mycells")
    before = snapshot_home()

    def full_disk(reg):
        raise OSError(errno.ENOSPC, "No space left on device", str(layout.registry_path()))

    with monkeypatch.context() as m:  # only this patch: the home fixture's CHROMBENCH_HOME stays
        m.setattr(catalog, "write_registry", full_disk)
        res = CliRunner().invoke(main, ["data", "remove", "mycells"])
    assert res.exit_code == 1 and "disk is full" in res.output and "registry.json" in res.output
    assert snapshot_home() == before and len(load.load_task("mycells").train) == 10


# -- hashes ---------------------------------------------------------------------------------------------------

def test_the_dataset_hash_identifies_the_arrays_not_the_name():
    out = _import("alpha").output
    _import("beta")
    reg = catalog.read_registry()["datasets"]
    assert reg["alpha"]["content_hash"] == reg["beta"]["content_hash"]
    assert f"dataset hash {reg['alpha']['content_hash']}" in out and "task hash" in out
    info = CliRunner().invoke(main, ["data", "info", "alpha"]).output
    assert f"dataset hash: {reg['alpha']['content_hash']}" in info and "content hash" not in info


def test_different_arrays_have_different_dataset_hashes(tmp_path, write_task_csvs):
    write_task_csvs(tmp_path / "a", n_genes=6, seed=0)
    write_task_csvs(tmp_path / "b", n_genes=6, seed=1)
    for name, folder in (("a1", "a"), ("b1", "b")):
        assert CliRunner().invoke(main, ["data", "import", str(tmp_path / folder), "--name", name]).exit_code == 0
    reg = catalog.read_registry()["datasets"]
    assert reg["a1"]["content_hash"] != reg["b1"]["content_hash"]


# -- what the operating system refuses ------------------------------------------------------------------------

def test_a_file_where_the_cache_should_be_is_one_line(tmp_path, monkeypatch):
    blocker = tmp_path / "home-is-a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CHROMBENCH_HOME", str(blocker))
    for args in (["import", str(TOY), "--name", "x"], ["remove", "x"], ["list"]):
        out = one_clear_line(CliRunner().invoke(main, ["data", *args]))
        assert str(blocker) in out and out.count("\n") == 1, args


def test_a_full_disk_during_import_is_one_line_and_leaves_nothing(monkeypatch, snapshot_home):
    _import("before")
    before = snapshot_home()
    real_save = np.save
    calls = []

    def save_until_full(path, arr, *a, **kw):
        calls.append(path)
        if len(calls) > 4:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_save(path, arr, *a, **kw)

    monkeypatch.setattr(np, "save", save_until_full)
    out = one_clear_line(CliRunner().invoke(main, ["data", "import", str(TOY), "--name", "after"]))
    assert "No space left on device" in out and "disk is full" in out and "Nothing was registered" in out
    assert snapshot_home() == before


def test_a_full_disk_during_a_download_is_named_not_taken_for_a_cut_connection(archive, servers, home,
                                                                               snapshot_home):
    """/dev/full answers every write with ENOSPC: the download's .part file is made to point there."""
    server = servers({KEY: archive})
    folder = home / "downloads" / f"zenodo-{RECORD}"
    folder.mkdir(parents=True)
    (folder / f"{KEY}.part").symlink_to("/dev/full")
    before = snapshot_home()
    out = one_clear_line(fetch_cli("--base-url", server.url))
    assert "No space left on device" in out and "disk is full" in out and "incomplete" not in out
    assert len(server.content_requests) == 1 and snapshot_home() == before  # no retry of a full disk


def test_a_deeply_nested_registry_is_one_line(home):
    layout.registry_path().write_text("[" * 100_000 + "]" * 100_000)
    out = one_clear_line(CliRunner().invoke(main, ["data", "import", str(TOY), "--name", "x"]))
    assert "registry.json is corrupt" in out


def test_a_file_in_the_way_of_an_export_is_one_line(tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "E003").write_text("in the way")
    out = one_clear_line(CliRunner().invoke(main, ["data", "export", "simremc", "--tasks", "E003", "--quick", "-o",
                                                   str(out_dir)]))
    assert str(out_dir / "E003") in out and (out_dir / "E003").read_text() == "in the way"
    assert not list(out_dir.rglob(".*"))  # no temporary file left


@pytest.mark.parametrize("name", ["mine\n", "mine\r\n", "E003\n"])
def test_names_with_a_trailing_newline_are_refused(name):
    res = CliRunner().invoke(main, ["data", "import", str(TOY), "--name", name])
    assert res.exit_code == 1 and "Traceback" not in res.output
    with pytest.raises(Exception, match="not a valid name"):
        identifier(name, "task name")


# -- the page ---------------------------------------------------------------------------------------------------

def test_a_labs_own_dataset_is_not_called_real_data_nor_shown_beside_the_remc_tables():
    from conftest import synthetic_records

    from chrombench.leaderboard import render

    own = synthetic_records({"svm": {"mine": [0.7, 0.71, 0.72]}}, dataset="mine", simulated=False, suite=None)
    board = render.collect(own, n_boot=0)
    md, page = render.markdown(board, []), render.html_page(board, [])
    assert "(own data)" in md and "real data" not in md and render.reported.SECTION_TITLE not in md
    assert "own data" in page and "badge real" not in page and 'id="reported"' not in page
    assert "(own data)" in render.console_table(own)
    remc = synthetic_records({"svm": {"E003": [0.7, 0.71, 0.72]}}, dataset="remc", simulated=False, suite=None)
    both = render.collect(own + remc, n_boot=0)
    assert render.reported.SECTION_TITLE in render.markdown(both, []) and "badge real" in render.html_page(both, [])
