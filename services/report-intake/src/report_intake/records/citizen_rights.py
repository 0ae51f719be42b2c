"""A citizen's rights over their report's data: see what is kept and remove their contact details."""

from __future__ import annotations

from sqlmodel import col, select

from burgermelding_shared.app import Runtime
from report_intake.config import IntakeSettings
from report_intake.conversation.messages import message_view
from report_intake.models import Contact, Message, Photo, TimelineEntry, kind_of
from report_intake.records import audit, holds
from report_intake.records import retention as retention_rules
from report_intake.reports import access as reports_access
from report_intake.schemas import (
    ContactRemoved,
    PlannedRemoval,
    StoredContact,
    StoredData,
    StoredPhoto,
)

COPIES = [
    "verification: the report without contact details, its photos' fingerprints and the verdict",
    "dispatch-bridge: the report (contact details only if you agreed to share them) and the messages",
    "the control room (meldkamer): what was forwarded to it, kept under its own rules",
]


NOT_STORED = [
    "your IP address",
    "your device's identifiers",
    "your app installation's id beside the report",
    "your location beyond the place you gave",
]


async def stored_data(runtime: Runtime, report_id: str, access: reports_access.Access) -> StoredData:
    """What is stored about this report, for the citizen who holds its token; the look is audited."""
    settings: IntakeSettings = runtime.settings
    async with runtime.db.transaction() as session:
        report = await reports_access.authorised_report(runtime, session, report_id, access)
        photos = (
            (
                await session.execute(
                    select(Photo).where(Photo.report_id == report_id).order_by(col(Photo.received_at), col(Photo.id))
                )
            )
            .scalars()
            .all()
        )
        contact = await session.get(Contact, report_id)
        messages = (
            (
                await session.execute(
                    select(Message)
                    .where(Message.report_id == report_id)
                    .order_by(col(Message.sent_at), col(Message.id))
                )
            )
            .scalars()
            .all()
        )
        entries = len(
            (await session.execute(select(col(TimelineEntry.id)).where(TimelineEntry.report_id == report_id))).all()
        )
        held = await holds.is_held(session, report_id)
        audit.record(session, "citizen.viewed_stored_data", report_id, actor="citizen", role="citizen")
    return StoredData(
        report={
            "id": report.id,
            "reference": report.reference,
            "category": report.category,
            "description": report.description,
            "location": {
                "lat": report.lat,
                "lon": report.lon,
                "accuracy_m": report.accuracy_m,
                "description": report.place_description,
            },
            "observed_at": report.observed_at,
            "received_at": report.received_at,
            "status": report.status,
            "in_progress": report.in_progress,
            "danger_to_life": report.danger_to_life,
            "finished_at": report.finished_at,
            "incident_number": report.incident_number,
        },
        photos=[
            StoredPhoto(
                id=p.id,
                sha256=p.sha256,
                size_bytes=p.size_bytes,
                content_type=p.content_type,
                received_at=p.received_at,
                display=p.display_state,
                sanitised_sha256=p.sanitised_sha256,
                kind=kind_of(p),
                playable_sha256=p.playable_sha256,
                compatible_sha256=p.compatible_sha256,
            )
            for p in photos
        ],
        contact=StoredContact(
            name=contact.name, phone=contact.phone, email=contact.email, share_with_police=contact.share_with_police
        )
        if contact
        else None,
        messages=[message_view(m) for m in messages],
        timeline_entries=entries,
        made_with_installation=report.installation_binding is not None,
        legal_hold=held,
        anonymised_at=report.anonymised_at,
        retention=[PlannedRemoval(**step) for step in retention_rules.planned(report, settings.retention_rules, held)],
        copies=COPIES,
        not_stored=NOT_STORED,
    )


async def remove_contact(runtime: Runtime, report_id: str, access: reports_access.Access) -> ContactRemoved:
    """The citizen's contact details go, at any time (under a legal hold too): here and at the bridge."""
    async with runtime.db.transaction() as session:
        report = await reports_access.authorised_report(runtime, session, report_id, access, changing=True, lock=True)
        if await session.get(Contact, report.id) is None:
            return ContactRemoved(removed=False)
        await retention_rules.remove(runtime, session, report, "remove_contact", retention_rules.CITIZEN_REQUEST)
    return ContactRemoved(removed=True)
