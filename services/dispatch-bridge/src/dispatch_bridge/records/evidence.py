"""Evidence: a report's or photo's custody, and an incident's signed export."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from burgermelding_shared import auditchain, evidence
from burgermelding_shared.app import Runtime
from burgermelding_shared.blobstore import BlobNotFound, BlobStoreUnavailable
from burgermelding_shared.contracts import ReportSubmitted
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.timeutil import utcnow
from burgermelding_shared.videos import COMPATIBLE_TYPE
from dispatch_bridge.audit import Who, audit
from dispatch_bridge.desk import listings
from dispatch_bridge.models import BridgeReport, Incident, deletions
from dispatch_bridge.models import audit as audit_tables
from dispatch_bridge.peers import call_service
from dispatch_bridge.records import holds

# File names in an evidence package, by media type (what a court's tools open them with).
SUFFIXES = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/heic": "heic",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/webm": "webm",
}


async def custody(
    runtime: Runtime, actor: Who, report_id: str, photo_id: str | None = None, audited: bool = True
) -> dict[str, Any]:
    """One record of where a report (or one of its photos) has been since it arrived: every entry about it in
    the audit chains of intake, verification and the bridge, in time order, each with its chain position and
    hash. A service that does not answer is named, not left out silently."""
    report_id = report_id[:36]
    async with runtime.db.transaction() as session:
        stored = await session.get(BridgeReport, report_id)
        # A report that retention purged keeps its custody: the chains still say where it was, and that it went.
        photos = ReportSubmitted.model_validate_json(stored.submission).photos if stored else []
        if stored is not None and photo_id is not None and photo_id not in {p.photo_id for p in photos}:
            raise ServiceError(
                404,
                "photo_not_found",
                "no such photo on this report",
                detail_nl="deze melding heeft geen foto met dit nummer",
            )
        digests = [
            d
            for p in photos
            if photo_id in (None, p.photo_id)
            for d in (p.sha256, p.sanitised_sha256, p.playable_sha256, p.compatible_sha256)
            if d
        ]
        incident = [stored.incident_id] if stored and stored.incident_id and photo_id is None else []
        own = await auditchain.entries_about(
            session, audit_tables, report_id=report_id, target_ids=[*digests, *incident]
        )
        if stored is None and not own:
            raise ServiceError(404, "report_not_found", "no such report", detail_nl="deze melding bestaat niet")
        if audited:
            audit(
                session,
                actor,
                "view_custody",
                "photo" if photo_id else "report",
                photo_id or report_id,
                report_id=report_id,
            )
    entries, unavailable = list(own), []
    for service in ("report-intake", "verification"):
        try:
            answer = await call_service(runtime, service, "GET", f"/internal/v1/audit?report_id={report_id}")
            entries += answer.json()
        except (httpx.HTTPError, ValueError):
            unavailable.append(service)
    if photo_id is not None:
        entries = [e for e in entries if e["target_type"] != "photo" or e["target_id"] == photo_id]
        entries = [
            e
            for e in entries
            if e["target_type"] in ("photo", "photo_sha256")
            or e["action"].startswith(("report.received", "retention.", "legal_hold."))
        ]
    entries.sort(key=lambda e: (e["at"], e["service"], e["seq"]))
    return {
        "report_id": report_id,
        "reference": stored.reference if stored else None,
        "photo_id": photo_id,
        "report_deleted": stored is None,
        "photos": [
            {
                "photo_id": p.photo_id,
                "kind": p.kind,
                "sha256": p.sha256,
                "sanitised_sha256": p.sanitised_sha256,
                **({"playable_sha256": p.playable_sha256} if p.playable_sha256 else {}),
                **({"compatible_sha256": p.compatible_sha256} if p.compatible_sha256 else {}),
            }
            for p in photos
            if photo_id in (None, p.photo_id)
        ],
        "entries": entries,
        "unavailable": unavailable,
    }


async def export_evidence(runtime: Runtime, actor: Who, incident_id: str) -> tuple[Path, dict[str, Any]]:
    """A package for the OM about one incident: the originals (checked against the hash recorded on arrival),
    the sanitised copies, each report as forwarded, its verification with reasons, its custody record and the
    audit entries of every service about it, under a manifest signed with the bridge's key. Returns the file
    (the caller removes it once sent) and what was packed."""
    async with runtime.db.sessions() as session:
        incident = await holds.event_of(session, incident_id)  # a merged-away incident's reports are the survivor's
        reports = await holds.held_reports(session, incident)
        hold = await holds.active_hold(session, incident.id)
        merged = [
            incident.id,
            *(await session.execute(select(Incident.id).where(Incident.merged_into == incident.id))).scalars(),
        ]
        removed = await removed_by_retention(session, merged, [r.report_id for r in reports])
    export_id = str(uuid.uuid4())
    folder = Path(tempfile.mkdtemp(prefix="evidence-"))
    path = folder / f"evidence-{incident.id}.zip"
    # What retention removed before this export is said in the signed manifest, never left out silently.
    about = {
        "export_id": export_id,
        "incident_id": incident.id,
        "requested_incident_id": incident_id[:36],
        "meldkamer_incident_id": incident.meldkamer_incident_id,
        "category": incident.category,
        "created_by": actor.username,
        "created_at": utcnow().isoformat(),
        "legal_hold": hold.id if hold else None,
        "reports": [r.reference for r in reports],
        "issuer": runtime.settings.service_name,
        "complete": not removed,
        "removed_by_retention": removed,
    }
    writer = evidence.PackageWriter(path, about=about)
    packed: list[tuple[str, str, str]] = []  # (report_id, photo_id, sha256) of every original packed
    try:
        for stored in reports:
            submission = ReportSubmitted.model_validate_json(stored.submission)
            base = f"reports/{stored.reference}"
            await asyncio.to_thread(
                writer.add_json,
                f"{base}/report.json",
                submission.model_dump(mode="json") | {"state": stored.state, "incident_id": stored.incident_id},
                kind="report",
            )
            if stored.verification:
                await asyncio.to_thread(
                    writer.add_json, f"{base}/verification.json", json.loads(stored.verification), kind="verification"
                )
            for photo in submission.photos:
                # A video's original may be hundreds of MB: copied into the package from a verified file, never
                # held in memory; a photo's is read (and checked) whole.
                original = await listings.served_file(runtime, photo.sha256)
                await asyncio.to_thread(
                    writer.add_file,
                    f"{base}/originals/{photo.photo_id}.{SUFFIXES.get(photo.content_type, 'bin')}",
                    original,
                    kind="original",
                    sha256_claimed=photo.sha256,
                )
                packed.append((stored.report_id, photo.photo_id, photo.sha256))
                if photo.sanitised_sha256:
                    copy = await asyncio.to_thread(runtime.blobs.read_verified, photo.sanitised_sha256)
                    await asyncio.to_thread(
                        writer.add_bytes,
                        f"{base}/sanitised/{photo.photo_id}.jpg",
                        copy,
                        kind="sanitised",
                        sha256_claimed=photo.sanitised_sha256,
                    )
                # A video's copies without metadata, as the dispatchers played them: the remuxed one, and the H.264
                # one made for browsers that do not play its codec.
                for copy_kind, digest, media_type in (
                    ("playable", photo.playable_sha256, photo.playable_type),
                    ("compatible", photo.compatible_sha256, COMPATIBLE_TYPE),
                ):
                    if digest:
                        served = await listings.served_file(runtime, digest)
                        await asyncio.to_thread(
                            writer.add_file,
                            f"{base}/{copy_kind}/{photo.photo_id}.{SUFFIXES.get(media_type or '', 'bin')}",
                            served,
                            kind=copy_kind,
                            sha256_claimed=digest,
                        )
            record = await custody(runtime, actor, stored.report_id, audited=False)
            await asyncio.to_thread(writer.add_json, f"{base}/custody.json", record, kind="custody")
            by_service: dict[str, list[dict[str, Any]]] = {}
            for entry in record["entries"]:
                by_service.setdefault(entry["service"], []).append(entry)
            for service, entries in sorted(by_service.items()):
                await asyncio.to_thread(
                    writer.add_bytes, f"{base}/audit/{service}.jsonl", evidence.audit_lines(entries), kind="audit"
                )
        signed = await asyncio.to_thread(writer.finish, runtime.settings.signing_key)
    except (BlobNotFound, ValueError, BlobStoreUnavailable) as exc:
        await asyncio.to_thread(shutil.rmtree, folder, True)
        if isinstance(exc, BlobStoreUnavailable):
            raise
        raise ServiceError(
            409,
            "evidence_incomplete",
            "a stored photo is missing or no longer matches its recorded hash: no package is made",
            detail_nl="een opgeslagen foto ontbreekt of klopt "
            "niet meer met de vastgelegde hash: er wordt geen pakket gemaakt",
        ) from exc
    async with runtime.db.transaction() as session:
        audit(
            session,
            actor,
            "evidence_export",
            "incident",
            incident.id,
            {
                "export_id": export_id,
                "manifest_sha256": signed["manifest_sha256"],
                "package_sha256": signed["package_sha256"],
                "files": signed["files"],
                "key_id": signed["key_id"],
                "removed_by_retention": [r["reference"] for r in removed],
            },
        )
        for report_id, photo_id, sha256 in packed:
            audit(
                session,
                actor,
                "photo.exported",
                "photo",
                photo_id,
                {"sha256": sha256, "export_id": export_id},
                report_id=report_id,
            )
    return path, {**signed, "export_id": export_id, "removed_by_retention": removed}


async def removed_by_retention(
    session: AsyncSession, incident_ids: list[str], report_ids: list[str]
) -> list[dict[str, Any]]:
    """What retention (or a citizen) removed from these incidents' reports: photos of reports still here, and
    whole reports purged (their log entries name the incident they were in). Nothing personal."""
    named = [deletions.c.removed.contains(f'"incident_id": "{i}"') for i in incident_ids]
    rows = (
        (
            await session.execute(
                deletions.select().where(or_(deletions.c.report_id.in_(report_ids), *named)).order_by(deletions.c.id)
            )
        )
        .mappings()
        .all()
    )
    found = []
    for row in rows:
        what = json.loads(row["removed"])
        if what.get("photos") or what.get("report"):
            found.append(
                {
                    "report_id": row["report_id"],
                    "reference": row["reference"],
                    "rule": row["rule"],
                    "action": row["action"],
                    "at": row["at"].isoformat(),
                    "photos": what.get("photos", 0),
                    "report_removed": bool(what.get("report")),
                }
            )
    return found
