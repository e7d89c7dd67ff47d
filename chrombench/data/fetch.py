"""Fetch the real DeepChrome/AttentiveChrome archive (Zenodo record 2652278) into the cache.

Steps, each safe to interrupt:

1. ask Zenodo's REST API for the record's file list (name, size, md5, download link);
2. download the archive(s) to ``$CHROMBENCH_HOME/downloads/zenodo-<record>/``, resuming a
   ``.part`` file with an HTTP Range request, and keep a file only once its size and md5 match;
3. stream the archive and copy out only ``<EID>/classification/{train,valid,test}.csv`` of the
   tasks asked for (whatever top folder they sit under), validate them with ``read_split``,
   write each task into a staging folder and rename it into the cache;
4. register (or extend) the dataset ``remc`` in ``registry.json``.

A task whose split files are empty, missing or invalid is recorded as unavailable with the
reason instead of failing the whole fetch: the public archive is known to have empty files for
some cell types. Only urllib is used, so fetching needs no extra dependency.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import json
import lzma
import os
import re
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from .. import __version__
from ..atomic import commit_dir, staging_dir
from ..errors import ChecksumError, ChrombenchError, DataFormatError
from ..home import home
from ..safepath import quote
from .arrays import SPLITS, Split
from .catalog import dataset_hash, now, read_registry, registry_transaction
from .layout import REMC, datasets_dir
from .taskdir import write_task_dir

DEFAULT_BASE_URL = "https://zenodo.org"
BASE_URL_ENV = "CHROMBENCH_ZENODO_URL"
RECORD = 2652278
TIMEOUT_S = 60
CHUNK = 1 << 20
# Every response is read up to a limit. The record JSON is a few kB (Zenodo's largest records list a
# few hundred files: well under 1 MiB); 16 MiB leaves room and stops an endless answer. A download
# stops at the size the record advertises, which may not exceed MAX_DOWNLOAD_BYTES (the archive is a
# few GB; raise the limit with $CHROMBENCH_FETCH_MAX_BYTES). A split file taken out of an archive may
# not exceed MAX_MEMBER_BYTES: the archive's largest is ~25 MB (19,802 genes x 100 rows), so 2 GiB
# only stops a decompression bomb.
MAX_RECORD_BYTES = 16 << 20
RECORD_DEADLINE_S = 120  # the record's JSON arrives in well under a second; a minute or two is generous
MAX_DOWNLOAD_BYTES = 16 << 30
MAX_BYTES_ENV = "CHROMBENCH_FETCH_MAX_BYTES"
MAX_MEMBER_BYTES = 2 << 30
ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")
# <anything>/E003/classification/train.csv, or E003/classification/train.csv at the top
MEMBER_RE = re.compile(r"(?:^|/)(E\d{3})/classification/(train|valid|test)\.csv\Z")
# a per-task archive such as E003.zip or E003_classification.tar.gz
PER_TASK_KEY_RE = re.compile(r"^(E\d{3})(?![0-9])")


@dataclass(frozen=True)
class RemoteFile:
    key: str
    size: int
    md5: str
    url: str
    base: str = DEFAULT_BASE_URL  # the base URL whose host (and $CHROMBENCH_FETCH_HOSTS) redirects may go to


@dataclass(frozen=True)
class Record:
    record: int
    version: str | None  # the record's own "version" metadata, when it has one
    files: tuple[RemoteFile, ...]


@dataclass
class FetchResult:
    entry: dict  # the registry entry of ``remc`` after the fetch
    fetched: dict[str, dict] = field(default_factory=dict)  # task -> task.json metadata
    already: list[str] = field(default_factory=list)  # asked for but already in the cache
    unavailable: dict[str, str] = field(default_factory=dict)  # task -> reason
    warnings: dict[str, list[str]] = field(default_factory=dict)  # task -> warnings (still usable)

    @property
    def available(self) -> list[str]:
        return sorted([*self.fetched, *self.already])


# -- talking to Zenodo ---------------------------------------------------------------------------

ALLOWED_HOSTS_ENV = "CHROMBENCH_FETCH_HOSTS"


def base_url(explicit: str | None = None) -> str:
    """``--base-url``, else ``$CHROMBENCH_ZENODO_URL``, else https://zenodo.org (no trailing slash)."""
    return (explicit or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")


class _AllowedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to an allowed host (the base URL's, or one in $CHROMBENCH_FETCH_HOSTS) over
    http(s): a record or mirror cannot send a download to another host with a 302."""

    def __init__(self, base: str):
        super().__init__()
        self.base = base

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        newurl = urllib.parse.urljoin(req.full_url, newurl)
        try:
            _allowed(newurl, self.base, f"the redirect from {req.full_url}")
        except ChrombenchError as exc:
            fp.close()
            raise ChrombenchError(f"{req.full_url} redirects (HTTP {code}) to {quote(newurl)}, a host that is not "
                                  f"allowed: {exc}") from None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _open(url: str, base: str, headers: dict | None = None):
    req = urllib.request.Request(url, headers={"User-Agent": f"chrombench/{__version__}", **(headers or {})})
    opener = urllib.request.build_opener(_AllowedRedirects(base))
    try:
        return opener.open(req, timeout=TIMEOUT_S)
    except urllib.error.HTTPError:
        raise
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ChrombenchError(f"cannot reach {url}: {reason}. Check the network, or point --base-url / "
                              f"${BASE_URL_ENV} at a Zenodo mirror") from exc


def _read_limited(resp, url: str, limit: int) -> bytes:
    """The whole body, or a ChrombenchError naming the URL and the limit once it passes ``limit`` bytes
    (declared in Content-Length or not: an endless answer is cut there)."""
    declared = resp.headers.get("Content-Length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise ChrombenchError(f"{url} answers with {int(declared):,} bytes, more than the {limit:,} a Zenodo record's "
                              "JSON may take; is --base-url a Zenodo records API?")
    chunks, size, deadline = [], 0, time.monotonic() + RECORD_DEADLINE_S
    while size <= limit:
        if time.monotonic() > deadline:  # a server that drips a byte at a time never trips the socket timeout
            raise ChrombenchError(f"{url} took more than {RECORD_DEADLINE_S} s to send a record's JSON; "
                                  "stopped reading")
        chunk = resp.read1(min(CHUNK, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise ChrombenchError(f"{url} sent more than {limit:,} bytes, the most a Zenodo record's JSON may take; "
                              "stopped reading. Is --base-url a Zenodo records API?")
    return b"".join(chunks)


def max_download_bytes() -> int:
    raw = os.environ.get(MAX_BYTES_ENV, "")
    if not raw:
        return MAX_DOWNLOAD_BYTES
    if not re.fullmatch(r"[0-9]{1,20}", raw):
        raise ChrombenchError(f"${MAX_BYTES_ENV}={quote(raw)}: write a number of bytes, e.g. {MAX_DOWNLOAD_BYTES}")
    return int(raw)


def _remote_file(f, base: str, record: int) -> RemoteFile:
    # Current records API: key/size/checksum "md5:<hex>"/links.self; the files endpoint uses
    # links.content; the legacy deposit API used filename/filesize/bare-hex checksum/links.download.
    if not isinstance(f, dict):
        raise ChrombenchError(f"Zenodo record {record}: a file entry is not an object: {quote(f)}")
    key = f.get("key") or f.get("filename")
    size = f.get("size", f.get("filesize"))
    algo, _, digest = str(f.get("checksum", "")).rpartition(":")
    if not isinstance(key, str) or not key or isinstance(size, bool) or not isinstance(size, int) or size < 0 \
            or (algo or "md5") != "md5" or not re.fullmatch(r"[0-9a-fA-F]{32}", digest):
        raise ChrombenchError(f"Zenodo record {record}: file entry without name, size or md5 checksum: {quote(f)}")
    limit = max_download_bytes()
    if size > limit:
        raise ChrombenchError(f"Zenodo record {record}: {quote(key)} is {size:,} bytes, more than the {limit:,} a "
                              f"download may take; raise ${MAX_BYTES_ENV} if that is right")
    links = f.get("links") if isinstance(f.get("links"), dict) else {}
    url = (links.get("content") or links.get("download") or links.get("self")
           or f"{base}/api/records/{record}/files/{urllib.parse.quote(key)}/content")
    return RemoteFile(key=key, size=size, md5=digest.lower(), url=_allowed(_on_base(str(url), base), base, key),
                      base=base)


def _allowed(url: str, base: str, key: str) -> str:
    """Only http(s) links on the base URL's host (or a host in ``$CHROMBENCH_FETCH_HOSTS``, comma
    separated) are followed: a record cannot send the download to ``file:///dev/zero`` or elsewhere."""
    u, b = urllib.parse.urlsplit(url), urllib.parse.urlsplit(base)
    extra = {h.strip().lower() for h in os.environ.get(ALLOWED_HOSTS_ENV, "").split(",") if h.strip()}
    if u.scheme not in ("http", "https") or not u.hostname or \
            (u.hostname.lower() != (b.hostname or "").lower() and u.hostname.lower() not in extra):
        raise ChrombenchError(f"the record links {key} to {quote(url)}: only http(s) links on {b.hostname} are "
                              f"followed (allow more hosts with ${ALLOWED_HOSTS_ENV}=host1,host2)")
    return url


def _on_base(url: str, base: str) -> str:
    """A mirror that serves Zenodo's record JSON unchanged still links to zenodo.org; download from the
    mirror the user chose instead (same path). Relative links are resolved against the base."""
    u, b = urllib.parse.urlsplit(url), urllib.parse.urlsplit(base)
    if not u.netloc:
        return urllib.parse.urljoin(base + "/", url)
    if u.netloc != b.netloc and u.netloc.split(":")[0].endswith("zenodo.org"):
        return urllib.parse.urlunsplit((b.scheme, b.netloc, b.path.rstrip("/") + u.path, u.query, ""))
    return url


def get_record(base: str, record: int = RECORD) -> Record:
    """The record's file list from ``GET {base}/api/records/{record}``."""
    url = f"{base}/api/records/{record}"
    try:
        with _open(url, base, {"Accept": "application/json"}) as resp:
            doc = json.loads(_read_limited(resp, url, MAX_RECORD_BYTES).decode("utf-8"))
    except urllib.error.HTTPError as exc:
        what = "not found" if exc.code == 404 else f"HTTP {exc.code} {exc.reason}"
        raise ChrombenchError(f"Zenodo record {record} at {url}: {what}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ChrombenchError(f"{url} did not answer with the JSON of a Zenodo record "
                              f"({type(exc).__name__}: {str(exc)[:200]})") from exc
    except (http.client.HTTPException, OSError) as exc:  # cut off while reading the answer
        raise ChrombenchError(f"reading {url} failed: {exc}") from exc
    if not isinstance(doc, dict):
        raise ChrombenchError(f"{url} did not answer with the JSON of a Zenodo record (a {type(doc).__name__}, not "
                              "an object)")
    files = doc.get("files", [])
    if isinstance(files, dict):  # {"entries": [...]} or {"entries": {key: {...}}}
        files = files.get("entries", [])
    if isinstance(files, dict):
        files = list(files.values())
    if not files or not isinstance(files, list):
        raise ChrombenchError(f"Zenodo record {record} at {url} lists no files (restricted or withdrawn?)")
    meta = doc.get("metadata")
    version = meta.get("version") if isinstance(meta, dict) else None
    return Record(record, str(version) if version else None, tuple(_remote_file(f, base, record) for f in files))


def select_archives(rec: Record, tasks: list[str]) -> tuple[list[RemoteFile], list[str]]:
    """The archives to download for ``tasks``, and the tasks no archive of the record can hold."""
    archives = [f for f in rec.files if f.key.lower().endswith(ARCHIVE_SUFFIXES)]
    if not archives:
        raise DataFormatError(f"Zenodo record {rec.record} has no zip or tar archive; its files: "
                              + ", ".join(f.key for f in rec.files))
    per_task = {m.group(1): f for f in archives if (m := PER_TASK_KEY_RE.match(f.key))}
    shared = [f for f in archives if f not in per_task.values()]
    wanted = shared + [per_task[t] for t in tasks if t in per_task]
    missing = [] if shared else [t for t in tasks if t not in per_task]
    return wanted, missing


# -- downloading with resume and verification -----------------------------------------------------

def md5_of(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def _transfer(remote: RemoteFile, part: Path, progress: bool) -> None:
    """Append to ``part`` what the server sends from its current size on; stop quietly if the
    connection drops (what arrived is a prefix the next attempt resumes from)."""
    offset = part.stat().st_size if part.exists() else 0
    try:
        resp = _open(remote.url, remote.base, {"Range": f"bytes={offset}-"} if offset else None)
    except urllib.error.HTTPError as exc:
        if exc.code == 416:  # nothing left to send from that offset; the size check decides
            return
        raise ChrombenchError(f"downloading {remote.key} from {remote.url}: HTTP {exc.code} {exc.reason}") from exc
    with resp:
        content_range = resp.headers.get("Content-Range", "")
        if offset and not (resp.status == 206 and content_range.startswith(f"bytes {offset}-")):
            offset = 0  # the server ignored the Range header and sends the whole file: start over
        with open(part, "ab" if offset else "wb") as fh, \
                tqdm(total=remote.size, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                     desc=f"download {remote.key}", disable=None if progress else True, leave=False) as bar:
            remaining = remote.size - offset  # never more than the record advertises
            while remaining > 0:
                try:
                    chunk = resp.read(min(CHUNK, remaining))
                except (http.client.HTTPException, OSError):
                    break  # connection cut: keep the prefix
                if not chunk:
                    break
                fh.write(chunk)  # a full disk is not a cut connection: it raises, named by the command
                bar.update(len(chunk))
                remaining -= len(chunk)


def download(remote: RemoteFile, folder: Path, *, retries: int = 2, progress: bool = True) -> Path:
    """Download ``remote`` into ``folder`` (resuming a ``.part``) and return the verified file.

    Raises ChecksumError, naming the file and both md5s, if the download stays short after
    ``retries`` resumptions (the ``.part`` is kept for the next run) or is complete but wrong
    (the ``.part`` is deleted, since resuming from it could never succeed).
    """
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / remote.key.replace("/", "__")
    if final.exists():
        if final.stat().st_size == remote.size and md5_of(final) == remote.md5:
            return final
        final.unlink()  # stale (the record changed) or damaged on disk: fetch it again
    part = final.with_name(final.name + ".part")
    for _ in range(retries + 1):
        if part.exists() and part.stat().st_size > remote.size:
            part.unlink()  # longer than the file can be: not a prefix of it
        if not part.exists() or part.stat().st_size < remote.size:
            _transfer(remote, part, progress)
        if part.exists() and part.stat().st_size == remote.size:
            break
    have = part.stat().st_size if part.exists() else 0
    if have != remote.size:
        got = md5_of(part) if part.exists() else hashlib.md5().hexdigest()
        if have > remote.size:
            part.unlink()
        raise ChecksumError(
            f"download of {remote.key} is incomplete: received {have} of {remote.size} bytes after "
            f"{retries + 1} attempts (the connection was closed early); expected md5 {remote.md5}, md5 of "
            f"the partial file {got}. Run the command again to resume from byte {min(have, remote.size)}.")
    got = md5_of(part)
    if got != remote.md5:
        part.unlink()
        raise ChecksumError(f"checksum mismatch for {remote.key} ({remote.url}): expected md5 {remote.md5}, "
                            f"got md5 {got}. The corrupt download was deleted; run the command again.")
    os.replace(part, final)
    return final


# -- reading the archive ------------------------------------------------------------------------

def _members(path: Path):
    """``(name, size, open)`` for each regular file of a zip or tar archive, in archive order.

    Tar archives are read as a stream, so a compressed one is decompressed once, front to back.
    """
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    yield info.filename, info.file_size, (lambda info=info: zf.open(info))
    elif tarfile.is_tarfile(path):
        with tarfile.open(path, "r:*") as tf:
            for m in tf:
                if m.isfile():
                    yield m.name, m.size, (lambda m=m: tf.extractfile(m))
    else:
        raise DataFormatError(f"{path}: neither a zip nor a tar archive")


def extract_tasks(archives: list[Path], tasks: list[str], workdir: Path, on_task, progress: bool = True) -> None:
    """Copy each needed split out of ``archives`` into ``workdir/<task>/`` and call
    ``on_task(task, {split: (path, md5, "archive:member")})`` as soon as a task is complete (and,
    at the end, for tasks with splits missing).

    Only files we name ourselves are written, never the archive's paths, so a hostile archive
    cannot write outside ``workdir``.
    """
    wanted = set(tasks)
    found: dict[str, dict] = {t: {} for t in tasks}
    done, layout_seen, first_names = set(), False, []
    with tqdm(total=len(tasks) * len(SPLITS), unit="file", desc="extract", disable=None if progress else True,
              leave=False) as bar:
        for archive in archives:
            with _damaged_archive_is_a_format_error(archive):
                layout_seen |= _extract_from(archive, wanted, found, done, first_names, workdir, on_task, bar)
            if done == wanted:
                break
    if not layout_seen and wanted:
        raise DataFormatError(
            f"{', '.join(a.name for a in archives)}: no <EID>/classification/{{train,valid,test}}.csv inside; "
            f"the archive starts with: {', '.join(first_names) or '(nothing)'}")
    for task in tasks:
        if task not in done:
            on_task(task, found[task])


@contextlib.contextmanager
def _damaged_archive_is_a_format_error(archive: Path):
    """A truncated or corrupt archive (whose checksum matched: the upstream file itself is damaged)
    is reported by name, not as a bare EOFError deep inside tarfile."""
    try:
        yield
    except (EOFError, tarfile.TarError, zipfile.BadZipFile, zlib.error, lzma.LZMAError, gzip.BadGzipFile) as exc:
        raise DataFormatError(
            f"{archive}: the archive is damaged ({type(exc).__name__}: {exc or 'ended early'}). Its size and md5 "
            f"matched the record, so the file on the server is itself damaged; report it to the record's "
            f"owners, or fetch from another --base-url.") from exc


def _extract_from(archive: Path, wanted: set, found: dict, done: set, first_names: list, workdir: Path,
                  on_task, bar) -> bool:
    """One archive's part of ``extract_tasks``; True if it holds any file in the archive layout."""
    layout_seen = False
    for name, _size, open_member in _members(archive):
        if len(first_names) < 5:
            first_names.append(name)
        m = MEMBER_RE.search(name)
        # hidden or macOS resource folders are skipped; "./E003/..." (tar's own prefix) is not hidden
        if not m or any(p.startswith(("__MACOSX", ".")) for p in name.split("/") if p not in ("", ".")):
            continue
        layout_seen = True
        task, split = m.groups()
        if task not in wanted or task in done or split in found[task]:
            continue  # not asked for, or a second copy of a split: the first one wins
        dest = workdir / task / f"{split}.csv"
        dest.parent.mkdir(parents=True, exist_ok=True)
        h = hashlib.md5()
        written = 0
        with open_member() as src, open(dest, "wb") as out:
            while block := src.read(CHUNK):
                written += len(block)
                if written > MAX_MEMBER_BYTES:  # counted as it decompresses: a header's size can lie
                    raise DataFormatError(f"{archive}: {quote(name)} unpacks to more than {MAX_MEMBER_BYTES:,} bytes, "
                                          "far more than any split of the archive; refusing it (a damaged or "
                                          "hostile archive)")
                h.update(block)
                out.write(block)
        found[task][split] = (dest, h.hexdigest(), f"{archive.name}:{name}")
        bar.update()
        if len(found[task]) == len(SPLITS):
            done.add(task)
            on_task(task, found[task])
            shutil.rmtree(workdir / task, ignore_errors=True)  # bound the disk space used
            if done == wanted:
                break  # no need to decompress the rest of a large tar
    return layout_seen


def check_task(task: str, files: dict) -> tuple[dict[str, Split] | None, str | None, list[str]]:
    """Validate one task's extracted splits: ``(splits, None, warnings)`` or ``(None, reason, [])``."""
    from ..tasks import get_spec
    from .csvformat import check_disjoint, read_split

    spec = get_spec(task)
    missing = [f"{s}.csv" for s in SPLITS if s not in files]
    if len(missing) == len(SPLITS):
        return None, f"not in the archive (no {spec.source_path}/*.csv)", []
    if missing:
        return None, f"{', '.join(missing)} missing from the archive", []
    empty = [f"{s}.csv" for s in SPLITS if files[s][0].stat().st_size == 0]
    if empty:
        return None, f"{', '.join(empty)} {'is' if len(empty) == 1 else 'are'} empty in the archive", []
    for s in SPLITS:
        known = spec.checksums.get(f"{s}.csv")
        if known and known.lower() != files[s][1]:
            return None, f"{s}.csv: md5 {files[s][1]} differs from the task spec's {known}", []
    splits = {}
    for s in SPLITS:
        path, _md5, where = files[s]
        try:
            splits[s] = read_split(path)
        except DataFormatError as exc:
            return None, str(exc).replace(str(path), where), []
    try:
        check_disjoint(splits, {s: files[s][2] for s in SPLITS})
    except DataFormatError as exc:
        return None, str(exc), []
    sizes = {s: len(splits[s]) for s in SPLITS}
    if sizes != spec.split_sizes:  # usable, but not the published task: say so, don't refuse
        got = ", ".join(f"{s} {n}" for s, n in sizes.items())
        doc = "/".join(str(spec.split_sizes[s]) for s in SPLITS)
        return splits, None, [f"genes per split ({got}) differ from the documented {doc}"]
    return splits, None, []


# -- the whole fetch ------------------------------------------------------------------------------

def fetch_remc(tasks: list[str], *, base: str | None = None, record: int = RECORD, force: bool = False,
               retries: int = 2, progress: bool = True) -> FetchResult:
    """Fetch ``tasks`` (EIDs) of the real archive into the cache and register them as ``remc``.

    Tasks already in the cache from the same record are skipped unless ``force``; fetching from
    another record starts a fresh ``remc`` entry (one dataset version never mixes records).
    Nothing is registered, and no task folder is written, if a download fails.
    """
    version = str(record)
    reg = read_registry()["datasets"]
    old = reg.get(REMC) if reg.get(REMC, {}).get("version") == version else None
    already = [t for t in tasks if not force and old and t in old["tasks"]]
    todo = [t for t in tasks if t not in already]
    result = FetchResult(entry=old or {}, already=already)
    if not todo:
        return result

    base = base_url(base)
    rec = get_record(base, record)
    wanted, not_in_record = select_archives(rec, todo)
    folder = home() / "downloads" / f"zenodo-{record}"
    paths = [download(f, folder, retries=retries, progress=progress) for f in wanted]

    root = datasets_dir() / REMC / version
    created = [d for d in (datasets_dir(), root.parent, root) if not d.exists()]
    staged: dict[str, Path] = {}

    def on_task(task, files):
        splits, reason, warnings = check_task(task, files)
        if splits is None:
            result.unavailable[task] = reason
            return
        stage = staging_dir(root / task, "staging")
        staged[task] = stage
        result.fetched[task] = write_task_dir(
            stage, splits, extra={"origin": f"zenodo:{record}", "files": {s: files[s][2] for s in SPLITS}})
        if warnings:
            result.warnings[task] = warnings

    workdir = Path(tempfile.mkdtemp(prefix=".extract.", dir=folder))
    try:
        extract_tasks(paths, [t for t in todo if t not in not_in_record], workdir, on_task, progress)
        for task in not_in_record:
            result.unavailable[task] = f"no archive for it in Zenodo record {record}"
        for task, stage in staged.items():
            commit_dir(stage, root / task, replace=True)
    except BaseException:
        for stage in staged.values():
            shutil.rmtree(stage, ignore_errors=True)
        for d in reversed(created):  # leave the cache as it was: drop the folders we made, if empty
            try:
                d.rmdir()
            except OSError:
                pass
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    result.entry = _register(rec, base, root, wanted, result)
    return result


def _register(rec: Record, base: str, root: Path, files: list[RemoteFile], result: FetchResult) -> dict:
    """Merge this fetch into the ``remc`` registry entry (fetching more tasks adds to it). The entry is
    re-read under the registry lock, so a fetch of other tasks that finished meanwhile is kept."""
    with registry_transaction() as reg:
        old = reg["datasets"].get(REMC)
        if old is not None and old.get("version") != str(rec.record):
            if not result.fetched:  # nothing usable came of another record: what was registered stays
                return old
            old = None  # another record: a fresh entry, one dataset version never mixes records
        entry = dict(old) if old else {
            "name": REMC, "version": str(rec.record), "source": f"zenodo:{rec.record}",
            "created": now(), "path": str(root), "single_task": False, "tasks": {}, "unavailable": {},
            "warnings": {}, "files": {}}
        entry = {**entry, "tasks": dict(entry["tasks"]), "unavailable": dict(entry.get("unavailable", {})),
                 "warnings": dict(entry.get("warnings", {})), "files": dict(entry.get("files", {}))}
        for task, meta in result.fetched.items():
            entry["tasks"][task] = {"content_hash": meta["content_hash"], "splits": meta["splits"]}
            entry["unavailable"].pop(task, None)
            entry["warnings"].pop(task, None)
        entry["warnings"].update(result.warnings)
        for task, reason in result.unavailable.items():
            if task not in entry["tasks"]:
                entry["unavailable"][task] = reason
        entry["files"].update({f.key: {"size": f.size, "md5": f.md5} for f in files})
        entry.update(record=rec.record, record_version=rec.version, base_url=base, updated=now(),
                     content_hash=dataset_hash({t: m["content_hash"] for t, m in entry["tasks"].items()}))
        reg["datasets"][REMC] = entry
    return entry
