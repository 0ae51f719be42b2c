"""dispatch-bridge's tests: their fixtures, and their helpers in bridge_support.py beside this file (importable by
that name: test folders here are not packages, and pytest's importlib mode puts no folder on the path, so this
one is put there for the tests in it)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from bridge_support import start_bridge


@pytest.fixture
async def bridge(start_service: Any) -> Any:
    """A bridge whose peers are down, its relay running (it polls once an hour), no accounts. (A module that
    needs another has a `bridge` fixture of its own.)"""
    return await start_bridge(start_service, accounts=())
