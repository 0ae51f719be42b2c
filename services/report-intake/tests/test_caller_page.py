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
from report_intake.callers import resumable
from report_intake.models import CallerLink, Photo, Report, messaging
from tests.helpers import make_jpeg
from tests.intake_support import stored_counts
from tests.videos import phone_clip

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
        category="violence",
        incident_location={"lat": 52.0907, "lon": 5.1214},
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


async def test_with_consent_the_caller_sends_a_photo_and_a_video_into_the_incident(intake: Any) -> None:
    token, link_id = await issued(intake)
    await intake.client.get(f"/c/{token}")
    # Before consent, files are not taken: back to the consent screen.
    early = await intake.client.post(f"/c/{token}/files", files=[("files", ("p.jpg", make_jpeg(), "image/jpeg"))])
    assert early.status_code == 303 and early.headers["location"].startswith(f"/c/{token}?")
    await intake.client.post(f"/c/{token}/consent", data={"decision": "give"})
    share = (await intake.client.get(f"/c/{token}")).text
    assert 'type="file" accept="image/*,video/*" multiple' in share and 'src="/c-static/location.js"' in share
    script = await intake.client.get("/c-static/location.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    clip = phone_clip(91, seconds=2.0)
    sent = await intake.client.post(
        f"/c/{token}/files?lang=nl",
        data={"lat": "52.0911", "lon": "5.1219", "accuracy": "12"},
        files=[("files", ("p.jpg", make_jpeg(), "image/jpeg")), ("files", ("v.mp4", clip, "video/mp4"))],
    )
    assert sent.status_code == 303, sent.text
    assert "Ontvangen: 2 bestand(en)" in (await intake.client.get(sent.headers["location"])).text
    async with intake.runtime.db.sessions() as session:
        report = (await session.execute(select(Report))).scalars().one()
        kinds = sorted((await session.execute(select(Photo.kind))).scalars())
        payloads = (
            (
                await session.execute(
                    select(messaging.outbox.c.payload).where(messaging.outbox.c.kind == "report.submitted")
                )
            )
            .scalars()
            .all()
        )
    assert report.caller_link_id == link_id and report.category == "violence" and kinds == ["photo", "video"]
    assert (report.lat, report.lon, report.accuracy_m) == (52.0911, 5.1219, 12)
    assert ASK in report.description
    told = [json.loads(p) for p in payloads]
    assert {t["caller_link"]["link_id"] for t in told} == {link_id}
    assert await events_told(intake) == [
        ("opened", 0),
        ("consent_given", 0),
        ("uploading", 0),
        ("received", 2),
    ]


async def test_a_callers_file_that_is_refused_says_why_and_stores_nothing(intake: Any) -> None:
    token, _ = await issued(intake)
    await intake.client.post(f"/c/{token}/consent", data={"decision": "give"})
    clip = phone_clip(92, seconds=2.0)
    refused = await intake.client.post(
        f"/c/{token}/files?lang=nl", files=[("files", ("v.mp4", clip[: len(clip) // 3], "video/mp4"))]
    )
    assert refused.status_code == 422 and "beschadigd of onvolledig" in refused.text
    assert '<p class="problem" role="alert">' in refused.text
    assert (await events_told(intake))[-2:] == [("uploading", 0), ("upload_refused", 0)]  # the dispatcher knows
    nothing = await intake.client.post(f"/c/{token}/files", data={"lat": "1"})  # a form without files
    assert nothing.status_code == 415 and '<p class="problem" role="alert">' in nothing.text
    async with intake.runtime.db.sessions() as session:
        assert (await session.execute(select(Report))).scalars().all() == []
    assert (await stored_counts(intake))["uploads"] == 0
    # No location shared: the incident's place, said so.
    sent = await intake.client.post(f"/c/{token}/files", files=[("files", ("p.jpg", make_jpeg(), "image/jpeg"))])
    assert sent.status_code == 303
    async with intake.runtime.db.sessions() as session:
        report = (await session.execute(select(Report))).scalars().one()
    assert (report.lat, report.lon) == (52.0907, 5.1214) and "caller shared none" in report.place_description


TUS = {"Tus-Resumable": "1.0.0"}


async def test_resumable_uploads_go_on_from_the_last_byte_and_become_the_report(intake: Any) -> None:
    token, link_id = await issued(intake)
    options = await intake.client.options(f"/c/{token}/uploads")
    assert options.status_code == 204 and options.headers["tus-version"] == "1.0.0"
    clip = phone_clip(94, seconds=2.0)
    create = {**TUS, "Upload-Length": str(len(clip))}
    assert (await intake.client.post(f"/c/{token}/uploads", headers=create)).status_code == 403  # consent first
    await intake.client.post(f"/c/{token}/consent", data={"decision": "give"})
    assert (await intake.client.post(f"/c/{token}/uploads", headers={"Upload-Length": "10"})).status_code == 412
    too_big = {**TUS, "Upload-Length": str(intake.settings.max_video_bytes + 1)}
    assert (await intake.client.post(f"/c/{token}/uploads", headers=too_big)).status_code == 413
    created = await intake.client.post(f"/c/{token}/uploads", headers=create)
    assert created.status_code == 201 and created.headers["upload-expires"].endswith("GMT")
    url = created.headers["location"]
    patch = {**TUS, "Content-Type": "application/offset+octet-stream"}
    half = len(clip) // 2
    first = await intake.client.patch(url, content=clip[:half], headers={**patch, "Upload-Offset": "0"})
    assert (first.status_code, first.headers["upload-offset"]) == (204, str(half))
    # The phone lost its connection and comes back: it asks how far it got, and a wrong offset is refused.
    head = await intake.client.head(url, headers=TUS)
    assert (head.headers["upload-offset"], head.headers["upload-length"]) == (str(half), str(len(clip)))
    wrong = await intake.client.patch(url, content=clip, headers={**patch, "Upload-Offset": "0"})
    assert (wrong.status_code, wrong.headers["upload-offset"]) == (409, str(half))
    # Not finished: not taken.
    early = await intake.client.post(f"/c/{token}/uploads/done", data={"upload": url.rsplit("/", 1)[1]})
    assert early.status_code == 409 and "niet helemaal aangekomen" in early.text
    rest = await intake.client.patch(url, content=clip[half:], headers={**patch, "Upload-Offset": str(half)})
    assert (rest.status_code, rest.headers["upload-offset"]) == (204, str(len(clip)))
    more = await intake.client.patch(url, content=b"x", headers={**patch, "Upload-Offset": str(len(clip))})
    assert more.status_code == 413
    done = await intake.client.post(
        f"/c/{token}/uploads/done", data={"upload": url.rsplit("/", 1)[1], "lat": "52.0909", "lon": "5.1216"}
    )
    assert done.status_code == 303, done.text
    async with intake.runtime.db.sessions() as session:
        report = (await session.execute(select(Report))).scalars().one()
        video = (await session.execute(select(Photo))).scalars().one()
    assert report.caller_link_id == link_id and video.kind == "video"
    assert intake.runtime.blobs.read_verified(video.sha256) == clip  # every byte, in order, as the phone had it
    assert not list((intake.settings.blob_dir.parent / "caller-uploads" / link_id).iterdir())
    assert ("received", 1) in await events_told(intake)


async def test_uploads_of_an_ended_link_are_refused_and_removed(intake: Any) -> None:
    token, link_id = await issued(intake)
    await intake.client.post(f"/c/{token}/consent", data={"decision": "give"})
    created = await intake.client.post(f"/c/{token}/uploads", headers={**TUS, "Upload-Length": "100"})
    url = created.headers["location"]
    await from_bridge(
        intake, "/internal/v1/caller-links/revocations", CallerLinkRevoked(link_id=link_id, revoked_at=utcnow())
    )
    patch = {**TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
    assert (await intake.client.patch(url, content=b"x" * 100, headers=patch)).status_code == 410
    assert not (intake.settings.blob_dir.parent / "caller-uploads" / link_id).exists()
    assert (await intake.client.head(f"/c/{secrets.token_urlsafe(16)}/uploads/abcdefghijklmnopq")).status_code == 404


async def test_a_half_sent_upload_of_a_link_that_ran_out_is_swept_away(intake: Any) -> None:
    """The caller walks away half-way and never comes back: the part they sent goes when the link ends."""
    token, link_id = await issued(intake)
    other_token, other_id = await issued(intake)
    for each in (token, other_token):
        await intake.client.post(f"/c/{each}/consent", data={"decision": "give"})
        created = await intake.client.post(f"/c/{each}/uploads", headers={**TUS, "Upload-Length": "100"})
        patch = {**TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
        assert (await intake.client.patch(created.headers["location"], content=b"x" * 50, headers=patch)).is_success
    folders = intake.settings.blob_dir.parent / "caller-uploads"
    sweep = resumable.UnfinishedUploadSweep(intake.runtime)
    assert await sweep.run_once() == 0  # both links live: their callers may come back
    async with intake.runtime.db.transaction() as session:
        ran_out = await session.get(CallerLink, link_id)
        ran_out.expires_at = utcnow() - timedelta(seconds=1)
    (folders / "not-a-link").mkdir()
    assert await sweep.run_once() == 2
    assert sorted(f.name for f in folders.iterdir()) == [other_id]
