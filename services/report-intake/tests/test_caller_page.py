"""The caller's page (issue #33): a link the bridge made opens a consent screen in the caller's language, with
nothing from another host; consent and refusal are recorded and told to the bridge; unknown, ended and expired
links get a page that says so and store nothing."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from burgermelding_shared.contracts import CallerLinkIssued, CallerLinkRevoked
from burgermelding_shared.service_auth import development_key
from burgermelding_shared.timeutil import utcnow
from report_intake.models import CallerLink, messaging

ASK = "Laat de auto zien die wegrijdt, met het kenteken als dat kan."


async def from_bridge(intake: Any, path: str, message: Any) -> None:
    token = development_key("dispatch-bridge").issue("report-intake")
    answer = await intake.client.post(
        path,
        content=message.model_dump_json(),
        headers={
            "Authorization": f"Bearer {token}",
            "content-type": "application/json",
            "Idempotency-Key": str(uuid.uuid4()),
        },
    )
    assert answer.status_code == 200, answer.text


async def issued(intake: Any, minutes: float = 30, language: str = "nl") -> tuple[str, str]:
    token = secrets.token_urlsafe(16)
    link_id = str(uuid.uuid4())
    link = CallerLinkIssued(
        link_id=link_id,
        token_sha256=hashlib.sha256(token.encode()).hexdigest(),
        incident_id=str(uuid.uuid4()),
        language=language,
        ask=ASK,
        expires_at=utcnow() + timedelta(minutes=minutes),
    )
    await from_bridge(intake, "/internal/v1/caller-links", link)
    return token, link_id


async def events_told(intake: Any) -> list[tuple[str, int]]:
    async with intake.runtime.db.sessions() as session:
        rows = (
            await session.execute(
                select(messaging.outbox.c.payload)
                .where(messaging.outbox.c.kind == "caller_link.event")
                .order_by(messaging.outbox.c.id)  # as they were told (PostgreSQL keeps no order of its own)
            )
        ).scalars()
        return [(json.loads(p)["event"], json.loads(p)["files"]) for p in rows]


async def test_the_consent_screen_then_a_refusal_then_consent(intake: Any) -> None:
    token, _link_id = await issued(intake)
    page = await intake.client.get(f"/c/{token}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert '<html lang="nl">' in text and ASK in text and "Beelden delen met de meldkamer" in text
    assert "Na 365 dagen verwijdert de politie ze" in text  # how long, from the retention rules
    # Nothing from another host: no script, style sheet, font or image from anywhere (the CSP says so too).
    assert not re.search(r"""(src|href)=["']https?://""", text) and "<script" not in text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer" and page.headers["cache-control"] == "no-store"
    await intake.client.get(f"/c/{token}")  # opened twice: told once
    assert await events_told(intake) == [("opened", 0)]
    refused = await intake.client.post(f"/c/{token}/consent", data={"decision": "refuse", "lang": "nl"})
    assert refused.status_code == 303 and refused.headers["location"] == f"/c/{token}?lang=nl"
    after = (await intake.client.get(f"/c/{token}")).text
    assert "U deelt geen beelden" in after and "Bedenkt u zich?" in after
    given = await intake.client.post(f"/c/{token}/consent", data={"decision": "give", "lang": "nl"})
    assert given.status_code == 303
    assert "De meldkamer ziet dat u beelden wilt delen." in (await intake.client.get(f"/c/{token}")).text
    await intake.client.post(f"/c/{token}/consent", data={"decision": "give"})  # the same answer again: told once
    assert await events_told(intake) == [("opened", 0), ("consent_refused", 0), ("consent_given", 0)]
    async with intake.runtime.db.sessions() as session:
        link = (await session.execute(select(CallerLink))).scalars().one()
    assert (
        link.consent == "given" and link.token_sha256 != token and token not in json.dumps(link.model_dump(mode="json"))
    )


async def test_the_callers_language_and_the_switch(intake: Any) -> None:
    token, _ = await issued(intake, language="en")
    english = (await intake.client.get(f"/c/{token}")).text
    assert '<html lang="en">' in english and "Share images with the control room" in english
    assert 'href="?lang=nl"' in english
    dutch = (await intake.client.get(f"/c/{token}?lang=nl")).text
    assert '<html lang="nl">' in dutch and "Ja, ik deel beelden" in dutch
    assert '<blockquote class="ask" lang="en">' in dutch  # the dispatcher's words keep their own language


async def test_unknown_ended_and_expired_links_say_so_and_store_nothing(intake: Any) -> None:
    revoked, revoked_id = await issued(intake)
    await from_bridge(
        intake, "/internal/v1/caller-links/revocations", CallerLinkRevoked(link_id=revoked_id, revoked_at=utcnow())
    )
    expired, _ = await issued(intake, minutes=-1)
    cases = {
        secrets.token_urlsafe(16): (404, "Deze link werkt niet"),
        "x": (404, "Deze link werkt niet"),
        "%2e%2e%2f%2e%2e%2fetc": (404, "Deze link werkt niet"),
        revoked: (410, "Deze link is ingetrokken"),
        expired: (410, "Deze link is verlopen"),
    }
    for token, (status, title) in cases.items():
        page = await intake.client.get(f"/c/{token}")
        assert (page.status_code, title in page.text) == (status, True), token
        posted = await intake.client.post(f"/c/{token}/consent", data={"decision": "give"})
        assert posted.status_code == status and "Traceback" not in posted.text
    assert await events_told(intake) == []
    async with intake.runtime.db.sessions() as session:
        consents = (await session.execute(select(CallerLink.consent))).scalars().all()
    assert consents == [None, None]
