"""report-intake's test fixtures. (Its helpers, which other services' tests use too, are tests/intake_support.py.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from report_intake.config import IntakeSettings


@pytest.fixture
async def intake(start_service: Callable[..., Any]) -> Any:
    """Intake with its default settings, its peers not running (what it sends waits in its outbox). A module that
    needs other settings has an `intake` fixture of its own."""
    return await start_service("report_intake", IntakeSettings)
