"""Fixtures for every test: real databases (SQLite files or fresh PostgreSQL databases) and real service apps.

`BM_TEST_DATABASE=sqlite|postgresql` picks the database; `python3 dev.py test` runs the suite on both, each pass
in two steps: everything not marked `serial` on all cores (pytest-xdist), then the `serial` tests (those that
restart PostgreSQL or need the machine to themselves) alone. What `dev.py test` tells this file, by environment:

- `BM_TEST_STEP=parallel|serial`: run only the tests not marked `serial`, or only those marked;
- `BM_TEST_DATABASE_TESTS_ONLY=1`: the second pass of a run with both passes: leave out the tests that touch no
  database (`touches_database`), which ran in the first pass already and would run the same way again;

An end-to-end test (tests/e2e) starts the four services as real processes and runs once per `dev.py test`, on the
database of the setup it is about, which it names with `pytest.mark.runs_on(...)` (see `END_TO_END_DATABASES`);
the other tests run on both databases, as above.
- `BM_TEST_DURATIONS=<file>`: add each test's time (setup, call and teardown) to that file, for the slowest list.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
import json
import os
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from burgermelding_shared.app import Runtime
from tests.databases import (
    REDIS_URL,
    TEST_DATABASE,
    create_database,
    drop_database,
    drop_redis_keys,
    drop_templates,
    redis_keyspace,
)

ROOT = Path(__file__).resolve().parent
STEP = os.environ.get("BM_TEST_STEP", "")
DATABASE_TESTS_ONLY = os.environ.get("BM_TEST_DATABASE_TESTS_ONLY") == "1"


def pytest_report_header(config: pytest.Config) -> str:
    step = {"parallel": ", the tests not marked serial", "serial": ", the tests marked serial"}.get(STEP, "")
    only = ", only the tests that touch a database" if DATABASE_TESTS_ONLY else ""
    return f"burgermelding test database: {TEST_DATABASE}{step}{only}"


# Names by which a test reaches the database that BM_TEST_DATABASE picks: the fixtures and helpers of
# tests.databases and tests.suite, and the setting itself. A function or class of a test helper module (any
# module beside the tests that is not a test module) or of the test's own module whose code uses one of these
# names joins them, and so on (`DatabaseNames`). Code is read as code: names in prose or annotations do not count.
DATABASE_NAMES = frozenset(
    {"database_url", "start_service", "create_database", "start_suite", "TEST_DATABASE", "BM_TEST_DATABASE"}
)
TEST_FOLDERS = ["tests", "shared/tests", "services/*/tests", "infra/*/tests"]


def names_used(node: ast.AST) -> set[str]:
    """The names a piece of code uses: variables, attributes, parameters, and strings that are nothing but a
    name (an environment variable's); not what annotations name."""
    used: set[str] = set()
    pending = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, ast.Name):
            used.add(current.id)
        elif isinstance(current, ast.Attribute):
            used.add(current.attr)
        elif isinstance(current, ast.arg):
            used.add(current.arg)
        elif isinstance(current, ast.Constant) and isinstance(current.value, str) and current.value.isidentifier():
            used.add(current.value)
        for name, value in ast.iter_fields(current):
            if name in {"annotation", "returns"}:
                continue
            pending.extend(v for v in (value if isinstance(value, list) else [value]) if isinstance(v, ast.AST))
    return used


def definitions(path: Path) -> tuple[dict[str, set[str]], set[str]]:
    """A module's top-level functions and classes (name: the names its code uses, decorators included), and the
    names its other top-level statements use, imports and the docstring aside."""
    defined, rest = {}, set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined[node.name] = names_used(node)
        elif not isinstance(node, (ast.Import, ast.ImportFrom)) and not (
            isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        ):
            rest |= names_used(node)
    return defined, rest


def grow(names: frozenset[str], defined: dict[str, set[str]]) -> frozenset[str]:
    """`names` and every definition whose code uses one of them, until nothing more joins."""
    grown = set(names)
    while more := {name for name, used in defined.items() if name not in grown and used & grown}:
        grown |= more
    return frozenset(grown)


class DatabaseNames:
    def __init__(self) -> None:
        helpers: dict[str, set[str]] = {}
        for folder in TEST_FOLDERS:
            for path in sorted(ROOT.glob(f"{folder}/*.py")):
                if not path.name.startswith("test_") and path != ROOT / "conftest.py":
                    helpers.update(definitions(path)[0])
        self.names = grow(DATABASE_NAMES, helpers)
        self.modules: dict[Path, tuple[dict[str, set[str]], frozenset[str], bool]] = {}

    def of_module(self, path: Path) -> tuple[dict[str, set[str]], frozenset[str], bool]:
        """A module's definitions, the names that reach the database in it, and whether its own top-level
        statements (a `pytestmark`, a constant) use one."""
        if path not in self.modules:
            defined, rest = definitions(path)
            names = grow(self.names, defined)
            self.modules[path] = defined, names, bool(rest & names)
        return self.modules[path]

    def uses(self, path: Path, name: str) -> bool:
        """Whether the top-level function or class `name` of a module reaches the database (yes if not found)."""
        defined, names, _whole = self.of_module(path)
        return name not in defined or bool(defined[name] & names)


def touches_database(item: pytest.Item, names: DatabaseNames) -> bool:
    """Whether a test may behave differently on SQLite and PostgreSQL: every end-to-end test (they start the
    services on real databases), every test of a module whose top-level statements use a way to the database
    (see DATABASE_NAMES), a test whose code (its class's, if it has one) uses one directly or through a helper,
    and a test that uses a fixture, from anywhere, whose code does. What this leaves out runs once, in the first
    pass. When in doubt, it answers yes."""
    path = Path(str(item.path))
    if "e2e" in path.relative_to(ROOT).parts:
        return True
    if names.of_module(path)[2]:
        return True
    code = getattr(item, "cls", None) or getattr(item, "function", None)
    if code is None or names.uses(path, code.__name__):
        return True
    infos = getattr(item, "_fixtureinfo", None)
    for name in getattr(item, "fixturenames", ()):
        if name in DATABASE_NAMES:
            return True
        for fixture in infos.name2fixturedefs.get(name, ()) if infos else ():
            where = inspect.getsourcefile(fixture.func) or ""
            if not where.startswith(str(ROOT)) or ".venv" in where:
                continue  # pytest's and plugins' own fixtures
            if names.uses(Path(where), fixture.func.__name__):
                return True
    return False


# Where an end-to-end test runs. The database code is tested on both databases by each service's own tests; what
# an end-to-end test adds is the services together, so it runs once, on the database of the setup it is about:
# "sqlite" for what the embedded default (a new machine, `dev.py run`) must do and what no database decides (the
# API's documents, who may call what, the browser, HTTP behaviour); "postgresql" for what production relies on
# (concurrency under a flood, restarts, retention and chains, production mode). Every end-to-end module says
# which with `pytestmark = pytest.mark.runs_on(...)`; one that does not is a collection error, not a guess.
END_TO_END_DATABASES = frozenset({"sqlite", "postgresql"})


def runs_here(item: pytest.Item) -> bool:
    """Whether a test runs on this pass's database: those without `runs_on` everywhere, the others where named."""
    marker = item.get_closest_marker("runs_on")
    if marker is None:
        if "e2e" in Path(str(item.path)).relative_to(ROOT).parts:
            raise pytest.UsageError(
                f"{item.nodeid}: an end-to-end test names the database it runs on, "
                f"pytest.mark.runs_on({' or '.join(repr(name) for name in sorted(END_TO_END_DATABASES))})"
            )
        return True
    if not marker.args or set(marker.args) - END_TO_END_DATABASES:
        raise pytest.UsageError(f"{item.nodeid}: runs_on names no database or an unknown one: {marker.args}")
    return TEST_DATABASE in marker.args


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep, leave = [], []
    names = DatabaseNames() if DATABASE_TESTS_ONLY else None
    for item in items:
        serial = item.get_closest_marker("serial") is not None
        if (
            (STEP == "parallel" and serial)
            or (STEP == "serial" and not serial)
            or not runs_here(item)
            or (names is not None and not touches_database(item, names))
        ):
            leave.append(item)
        else:
            keep.append(item)
    if leave:
        config.hook.pytest_deselected(items=leave)
    # The end-to-end tests first: they are the long ones, so that the last minutes of a run are not one worker
    # finishing a two-minute test while the other has nothing left (a stable sort: a module stays in one piece).
    items[:] = sorted(keep, key=lambda item: "e2e" not in Path(str(item.path)).relative_to(ROOT).parts)


# A test module whose tests share a fixture wider than one test (a running suite, a browser, what one test hands on
# to the next) is one unit of work for pytest-xdist, run whole and in order by one worker, so that the fixture is
# made once; any other test goes alone to whichever worker is free. (Found by reading the module and the conftest
# files above it; xdist's own `xdist_group` marker no longer reaches its scheduler under pytest 9.)
WIDER_SCOPE = re.compile(r"""scope\s*=\s*["'](module|class|package|session)["']""")


def shares_fixtures(path: str) -> bool:
    module = ROOT / path
    if not module.is_file():
        return True
    conftests = [folder / "conftest.py" for folder in module.parents if folder != ROOT and ROOT in folder.parents]
    return any(WIDER_SCOPE.search(file.read_text()) for file in [module, *conftests] if file.is_file())


class Scheduling:
    """A plugin of pytest-xdist's hook (registered only where xdist runs: `-p no:xdist` knows no such hook)."""

    @staticmethod
    def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
        """`--dist loadgroup`, our way: the units of work described above, the largest first, then single tests."""
        if config.getvalue("dist") != "loadgroup":
            return None
        from xdist.scheduler import LoadScopeScheduling

        class ModulesThatShare(LoadScopeScheduling):
            def _split_scope(self, nodeid: str) -> str:
                path = nodeid.split("::", 1)[0]
                return path if shares_fixtures(path) else nodeid

        return ModulesThatShare(config, log)


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(Scheduling(), "burgermelding-scheduling")


def pytest_sessionfinish(session: pytest.Session) -> None:
    drop_templates()


_durations: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if os.environ.get("BM_TEST_DURATIONS") and not os.environ.get("PYTEST_XDIST_WORKER"):
        nodeid = report.nodeid.rsplit("@", 1)[0] if "@" in report.nodeid.rsplit("]", 1)[-1] else report.nodeid
        _durations[nodeid] = _durations.get(nodeid, 0.0) + report.duration


def pytest_unconfigure(config: pytest.Config) -> None:
    target = os.environ.get("BM_TEST_DURATIONS")
    if target and _durations and not os.environ.get("PYTEST_XDIST_WORKER"):
        with open(target, "a") as out:
            for nodeid, seconds in _durations.items():
                out.write(json.dumps({"test": nodeid, "database": TEST_DATABASE, "seconds": seconds}) + "\n")


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Make a fresh, empty database for a service: `database_url("intake")`; or one migrated to a service's head
    revision, a copy of the template this process migrated once: `database_url("intake", "report_intake")`."""
    created: list[str | None] = []

    def make(name: str, migrated_for: str | None = None) -> str:
        url, database = create_database(name, tmp_path, migrated_for)
        created.append(database)
        return url

    yield make
    for database in created:
        drop_database(database)


@dataclass
class RunningService:
    app: FastAPI
    client: httpx.AsyncClient
    runtime: Runtime
    settings: Any


@pytest.fixture
async def start_service(database_url: Callable[..., str], tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Start a service app in-process with its lifespan (relay and workers running) on a migrated database (a
    copy of this process's migrated template: Alembic runs once per service and process, not for every test)."""
    stack = AsyncExitStack()

    async def start(package: str, settings_cls: type, **overrides: Any) -> RunningService:
        main = importlib.import_module(f"{package}.main")
        url = await asyncio.to_thread(database_url, package, package)
        values = {
            "database_url": url,
            "blob_dir": tmp_path / "blobs",
            "environment": "development",
            "relay_poll_seconds": 0.2,
            "relay_backoff_base_seconds": 0.05,
            **overrides,
        }
        settings = settings_cls(**values)
        app = main.create_app(settings)
        await stack.enter_async_context(app.router.lifespan_context(app))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        stack.push_async_callback(client.aclose)
        return RunningService(app, client, app.state.runtime, settings)

    yield start
    await stack.aclose()


@pytest.fixture
def redis_url() -> Iterator[tuple[str, str]]:
    """The machine's Redis and a key prefix of this test's own, whose keys are removed afterwards."""
    prefix = redis_keyspace()
    yield REDIS_URL, prefix
    drop_redis_keys(prefix)
