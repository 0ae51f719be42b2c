"""Fresh test databases: a SQLite file, or a new PostgreSQL database dropped afterwards; empty, or already migrated.

A migrated database (`create_database(name, folder, package)`) is a copy of a template that this process migrated
once, with the service's own Alembic scripts: a file copy on SQLite, `CREATE DATABASE ... TEMPLATE` on PostgreSQL.
Each process (each pytest-xdist worker) keeps templates of its own and drops them at the end of its session
(`drop_templates`, from conftest.py). Names carry the worker's id, so workers never meet.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib
import os
import shutil
import tempfile
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TEST_DATABASE = os.environ.get("BM_TEST_DATABASE", "sqlite")
POSTGRES_URL = os.environ.get("BM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def postgres_admin(statement: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    # A thread of its own, so this works whether or not an event loop runs in the caller's thread.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


def worker_id() -> str:
    """This process's pytest-xdist worker ("gw0", "gw1", ...), or "main" without xdist."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def postgres_url_of(database: str) -> str:
    base = POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{database}"


def create_database(name: str, folder: Path, package: str | None = None) -> tuple[str, str | None]:
    """(SQLAlchemy URL, PostgreSQL database name to drop later or None): an empty database, or with `package` (a
    service's package, e.g. "report_intake") one migrated to that service's head revision.

    A SQLite file that is already there (a second start of a service on the same file) is left as it is."""
    if TEST_DATABASE == "sqlite":
        path = folder / (name + ".db")
        if package is not None and not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(_template(package), path)
        return f"sqlite+aiosqlite:///{path}", None
    database = f"bmtest_{name.replace('-', '_')}_{worker_id()}_{uuid.uuid4().hex[:12]}"
    template = f' TEMPLATE "{_template(package)}"' if package is not None else ""
    postgres_admin(f'CREATE DATABASE "{database}"{template}')
    return postgres_url_of(database), database


def drop_database(database: str | None) -> None:
    if database:
        postgres_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def migrations_dir_of(package: str) -> Path:
    return Path(importlib.import_module(package).__file__).parent / "migrations"  # type: ignore[arg-type]


_templates: dict[str, str] = {}  # package: its template (a SQLite file's path, or a PostgreSQL database's name)
_templates_lock = threading.Lock()
_template_folder: Path | None = None


def _template(package: str) -> str:
    """The template of a service's migrated database, made (migrated with Alembic) on first use in this process."""
    global _template_folder
    with _templates_lock:
        if package in _templates:
            return _templates[package]
        from burgermelding_shared import migrations

        if TEST_DATABASE == "sqlite":
            if _template_folder is None:
                _template_folder = Path(tempfile.mkdtemp(prefix=f"bm-templates-{worker_id()}-"))
                atexit.register(shutil.rmtree, _template_folder, True)
            path = _template_folder / f"{package}.db"
            url, template = f"sqlite+aiosqlite:///{path}", str(path)
        else:
            template = f"bmtemplate_{package}_{worker_id()}_{uuid.uuid4().hex[:12]}"
            postgres_admin(f'CREATE DATABASE "{template}"')
            url = postgres_url_of(template)
        # Alembic's env runs its own event loop: a thread of its own, whether or not a loop runs in this one.
        try:
            with ThreadPoolExecutor(1) as pool:
                pool.submit(migrations.upgrade, migrations_dir_of(package), url).result()
        except BaseException:
            if TEST_DATABASE != "sqlite":
                drop_database(template)
            raise
        if TEST_DATABASE == "sqlite":
            # The migration's last connection has closed, so its WAL is in the file: the file alone is the copy.
            assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0, "a WAL left over"
        _templates[package] = template
        return template


def drop_templates() -> None:
    """Drop this process's templates (at the end of its test session)."""
    with _templates_lock:
        for template in _templates.values():
            if TEST_DATABASE == "sqlite":
                Path(template).unlink(missing_ok=True)
            else:
                drop_database(template)
        _templates.clear()


REDIS_URL = os.environ.get("BM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_keyspace() -> str:
    """A key prefix of a test's own in the machine's Redis (`REDIS_URL`), which must answer: `python3 dev.py test`
    starts one (scripts/setup_machine.py). Remove its keys afterwards with `drop_redis_keys`."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise AssertionError(f"Redis at {REDIS_URL} does not answer ({exc}); start it: redis-server --daemonize yes")
    finally:
        client.close()
    return f"bm-test-{uuid.uuid4().hex[:12]}"


def drop_redis_keys(prefix: str) -> None:
    import redis

    with redis.Redis.from_url(REDIS_URL) as client:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)


def run_sql(url: str, statement: str, params: dict | None = None) -> list[tuple]:
    """One statement against a service's database (SQLite file or PostgreSQL), from a test: its rows."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def run() -> list[tuple]:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(statement), params or {})
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def everything_stored(url: str) -> str:
    """Every row of every table of a service's database as text: to show that something is *not* stored."""
    from sqlalchemy import inspect
    from sqlalchemy.ext.asyncio import create_async_engine

    async def tables() -> list[str]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(1) as pool:
        names = pool.submit(asyncio.run, tables()).result()
    return "\n".join(f"{name}: {row}" for name in names for row in run_sql(url, f'SELECT * FROM "{name}"'))
