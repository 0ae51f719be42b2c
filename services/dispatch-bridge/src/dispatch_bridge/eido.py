"""Builds the EIDO (NENA-STA-021) document for an incident: components that point to each other by `$ref`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from burgermelding_shared.categories import CATEGORIES
from burgermelding_shared.contracts import PhotoRef, ReportSubmitted

EIDO_PRIORITY = {1: 10, 2: 6, 3: 3}  # meldkamer prio -> incidentCommonPriorityNumber (0-10, 10 highest)


def media_components(report: ReportSubmitted, photos: list[PhotoRef], photo_urls: dict[str, str],
                     common: dict[str, Any]) -> list[dict[str, Any]]:
    """EIDO mediaComponents: a link the meldkamer can fetch, and the SHA-256 it must match."""
    numbers = {p.photo_id: i + 1 for i, p in enumerate(report.photos)}
    return [{"$id": f"media-{p.photo_id}", **common, "uri": photo_urls[p.photo_id], "contentType": p.content_type,
             "label": f"photo {numbers.get(p.photo_id, 0)} of {report.reference}", "digestSha256": p.sha256}
            for p in photos]


def build_eido(*, incident_id: str, priority: int, report: ReportSubmitted, photo_urls: dict[str, str],
               agency: str, callback_uri: str, now: datetime) -> dict[str, Any]:
    stamp = now.isoformat()
    common = {"lastUpdateTimeStamp": stamp, "updatedByAgencyReference": agency}
    category = CATEGORIES[report.category]
    location = {
        "$id": f"loc-{report.report_id}", **common,
        "locationTypeDescriptionRegistryText": "CurrentIncident",
        "locationByValue": {"latitude": report.location.lat, "longitude": report.location.lon,
                            "horizontalAccuracyMeters": report.location.accuracy_m},
        "locationDescriptionText": report.location.description,
    }
    person = {"$id": f"person-{report.report_id}", **common,
              "personIncidentRoleRegistryText": ["ReportingParty", "Witness"],
              # Anonymous: the only way back to the citizen is through us, by report reference.
              "callBackReference": report.reference}
    notes = {"$id": f"notes-{report.report_id}", **common,
             "notesActionComments": report.description[:2000], "agentReference": "citizen-app"}
    media = media_components(report, report.photos, photo_urls, common)
    incident = {
        "$id": f"incident-{incident_id}", **common,
        "incidentTypeCommonRegistryText": category.apco,
        "incidentTypeInternalCode": category.lmc,
        "incidentStatusCommonRegistryText": ["Active"],
        "internalIncidentId": incident_id,
        "incidentCommonPriorityNumber": EIDO_PRIORITY[priority],
        "inProgress": report.in_progress,
        "dangerToLife": report.danger_to_life,
        "locationReference": [{"$ref": location["$id"]}],
        "personReference": [{"$ref": person["$id"]}],
        "notesReference": [{"$ref": notes["$id"]}],
        "mediaReference": [{"$ref": m["$id"]} for m in media],
    }
    return {
        "$id": f"eido-{incident_id}", **common,
        "eidoVersion": "1.0",
        "issuingElementIdentification": "burgermelding-dispatch-bridge",
        "eidoExtensionId": ["burgermelding:inProgress", "burgermelding:digestSha256"],
        "agencyComponent": [{"$id": f"agency-{agency}", **common, "agencyIdentifier": agency}],
        "incidentComponent": [incident],
        "locationComponent": [location],
        "personComponent": [person],
        "notesComponent": [notes],
        "mediaComponent": media,
        "callbackComponent": [{"$id": f"callback-{incident_id}", **common,
                               "callBackInformationUri": [callback_uri]}],
    }
