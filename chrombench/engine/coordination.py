"""Sharing work between ``chrombench run`` processes through the Optuna storage database.

- ``study_lock``: a mutual-exclusion section per study, so that "count the trials, then create one"
  is atomic across workers (a PostgreSQL transaction-level advisory lock; on SQLite, which is
  single-machine by nature, an ``flock`` on a file beside the database). Other databases get no
  lock, and the trial budget then holds only up to ``budget + workers - 1``.
- ``chrombench_claims``: one row per (study, item) with a unique key. A worker that INSERTs the
  row owns the item; the row keeps a heartbeat while the item is computed and, once done, the
  result itself (sealed record and predictions), so every worker can copy finished results into
  its own output folder. A claim whose owner stopped beating (or, on the same host, whose process
  is gone) is stale and can be taken over with one conditional UPDATE.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import threading
import time
import uuid

import sqlalchemy as sa

from ..errors import ChrombenchError

CLAIMS_TABLE = "chrombench_claims"
RUNNING, DONE = "running", "done"


def worker_id() -> str:
    """host:pid:nonce. The pid lets a restarted run on the same host recognise its dead predecessor."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str | None) -> bool:
    """True only when we can tell for sure: same host and no such process."""
    if not owner:
        return False
    parts = owner.split(":")
    if len(parts) < 3 or parts[0] != socket.gethostname():
        return False
    try:
        pid = int(parts[1])
    except ValueError:
        return False
    if pid == os.getpid():
        return owner != CURRENT_WORKER  # this pid, another nonce: a predecessor whose pid got reused by us
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


CURRENT_WORKER = worker_id()


def normalise_url(url: str) -> str:
    """``postgresql://`` with the driver that is installed (SQLAlchemy 2.1 assumes psycopg 3; the
    ``postgres`` extra installs psycopg2). An explicit ``postgresql+driver://`` is left alone."""
    if url.startswith(("postgresql://", "postgres://")):
        import importlib.util

        rest = url.split("://", 1)[1]
        for module, driver in (("psycopg", "psycopg"), ("psycopg2", "psycopg2")):
            if importlib.util.find_spec(module) is not None:
                return f"postgresql+{driver}://{rest}"
        raise ChrombenchError("a postgresql:// storage needs a driver: pip install 'chrombench[postgres]' (psycopg2)")
    return url


def engine_kwargs(url: str) -> dict:
    """Connection settings that suit many short transactions from several processes."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 120}}
    kw: dict = {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        kw["connect_args"] = {"connect_timeout": 10}
    return kw


def probe_storage(url: str) -> None:
    """Fail fast, before any work, when the storage database cannot be reached."""
    try:
        eng = sa.create_engine(url, **engine_kwargs(url))
        with eng.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        eng.dispose()
    except Exception as exc:  # driver errors vary; all mean the same to the user
        raise ChrombenchError(f"cannot reach --storage {redact(url)}: {type(exc).__name__}: "
                              f"{str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}") from exc


def redact(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url



@contextlib.contextmanager
def database_lock(engine: sa.Engine, name: str):
    """Mutual exclusion across processes (and machines sharing the database) for the section inside.

    PostgreSQL: an advisory lock held by one transaction (released with it, even when the process
    dies). SQLite: an ``flock`` on a file beside the database. Other databases: no lock.
    """
    dialect = engine.dialect.name
    if dialect == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
            yield
    elif dialect == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        with open(f"{engine.url.database}.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    else:
        yield


SCHEMA_LOCK = "chrombench:schema"


@contextlib.contextmanager
def schema_lock(url: str):
    """Held while Optuna's tables and ours are created: PostgreSQL's ``CREATE TYPE``/``CREATE TABLE``
    with ``checkfirst`` is not safe against a second worker doing the same at the same moment (it
    fails with a unique violation on ``pg_type``), which is exactly what two workers started together do."""
    eng = sa.create_engine(url, **engine_kwargs(url))
    try:
        with database_lock(eng, SCHEMA_LOCK):
            yield
    finally:
        eng.dispose()


class Coordinator:
    """The claims table and the study locks. ``engine``: the Optuna storage's own (``RDBStorage.engine``),
    so that a run holds one connection pool to its database, not two."""

    def __init__(self, url: str, heartbeat_interval: float = 10.0, grace_period: float = 60.0,
                 engine: sa.Engine | None = None):
        self.url = url
        self.engine = engine if engine is not None else sa.create_engine(url, **engine_kwargs(url))
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self.worker = CURRENT_WORKER
        meta = sa.MetaData()
        self.claims = sa.Table(
            CLAIMS_TABLE, meta,
            sa.Column("study", sa.String(512), primary_key=True),
            sa.Column("item", sa.String(128), primary_key=True),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("owner", sa.String(256), nullable=False),
            sa.Column("heartbeat", sa.Float, nullable=False),
            sa.Column("payload", sa.Text, nullable=True),
        )
        meta.create_all(self.engine, checkfirst=True)  # callers hold schema_lock (run.py)

    # -- locks -----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def study_lock(self, study: str):
        with database_lock(self.engine, study):
            yield

    # -- claims ----------------------------------------------------------------------------------
    def rows(self, study: str) -> dict[str, dict]:
        c = self.claims.c
        with self.engine.connect() as conn:
            res = conn.execute(sa.select(c.item, c.status, c.owner, c.heartbeat, c.payload).where(c.study == study))
            return {r.item: dict(r._mapping) for r in res}

    def claim(self, study: str, item: str) -> bool:
        """Try to own ``item``: insert the claim, or take over a stale one. True if we own it now."""
        now = time.time()
        try:
            with self.engine.begin() as conn:
                conn.execute(self.claims.insert().values(study=study, item=item, status=RUNNING,
                                                         owner=self.worker, heartbeat=now))
            return True
        except sa.exc.IntegrityError:
            pass
        row = self.rows(study).get(item)
        if row is None or row["status"] != RUNNING:
            return False
        if not (owner_is_dead(row["owner"]) or now - row["heartbeat"] > self.grace_period):
            return False
        c = self.claims.c
        with self.engine.begin() as conn:  # conditional on the row being exactly as we saw it
            res = conn.execute(self.claims.update()
                               .where(c.study == study, c.item == item, c.status == RUNNING,
                                      c.owner == row["owner"], c.heartbeat == row["heartbeat"])
                               .values(owner=self.worker, heartbeat=now))
            return res.rowcount == 1

    def beat(self, study: str, item: str) -> None:
        c = self.claims.c
        with self.engine.begin() as conn:
            conn.execute(self.claims.update().where(c.study == study, c.item == item, c.owner == self.worker)
                         .values(heartbeat=time.time()))

    def complete(self, study: str, item: str, payload: dict) -> None:
        c = self.claims.c
        with self.engine.begin() as conn:
            res = conn.execute(self.claims.update().where(c.study == study, c.item == item, c.owner == self.worker)
                               .values(status=DONE, heartbeat=time.time(), payload=json.dumps(payload)))
            if res.rowcount != 1:
                raise ChrombenchError(f"lost the claim on {study} {item} while computing it (heartbeats stopped "
                                      f"for longer than the {self.grace_period:.0f} s grace period?)")

    def release(self, study: str, item: str) -> None:
        """Give up an item we could not finish, so that another worker (or a rerun) takes it."""
        c = self.claims.c
        with self.engine.begin() as conn:
            conn.execute(self.claims.delete().where(c.study == study, c.item == item, c.owner == self.worker,
                                                    c.status == RUNNING))

    def reset(self, study: str) -> None:
        c = self.claims.c
        with self.engine.begin() as conn:
            conn.execute(self.claims.delete().where(c.study == study))

    def is_stale(self, row: dict) -> bool:
        return row["status"] == RUNNING and (owner_is_dead(row["owner"])
                                             or time.time() - row["heartbeat"] > self.grace_period)

    def dispose(self) -> None:
        self.engine.dispose()


class Heartbeat:
    """Calls ``beat()`` now and then every ``interval`` seconds in a daemon thread, until closed."""

    def __init__(self, beat, interval: float):
        self._beat, self._interval = beat, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="chrombench-heartbeat")

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._beat()
            except Exception:  # a missed beat only risks a takeover after the grace period
                pass

    def __enter__(self) -> "Heartbeat":
        self._beat()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
