"""Fixtures the end-to-end modules share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.suite import SmsGateway


@pytest.fixture(scope="module")
def sms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmsGateway]:
    """The simulated SMS gateway as a process of its own, for a module's suite (`BM_BRIDGE_SMS_URL=sms.url`)."""
    gateway = SmsGateway(tmp_path_factory.mktemp("sms"))
    yield gateway
    gateway.stop()
