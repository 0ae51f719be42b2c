"""verification's test fixtures. (Its helpers, which other services' tests use too, are
tests/verification_support.py.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from verification.config import VerificationSettings

BRIDGE_DOWN = "http://127.0.0.1:9"  # the bridge is not running: results stay in the outbox, where tests read them


@pytest.fixture
async def verification(start_service: Callable[..., Any]) -> Any:
    """Verification with one image worker, the bridge not running. A module that needs other settings has a
    `verification` fixture of its own."""
    return await start_service("verification", VerificationSettings, workers=1, bridge_url=BRIDGE_DOWN)
