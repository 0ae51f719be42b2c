"""EIDO documents for the meldkamer."""

from __future__ import annotations

import html
import uuid
import xml.etree.ElementTree as ET  # we only write XML here
from datetime import datetime
from typing import Any

from burgermelding_shared.categories import CATEGORIES
from burgermelding_shared.contracts import ContactDetails, Location, PhotoRef, ReportSubmitted
from burgermelding_shared.eido import EIDO_VERSION, MEDIA_DIGEST_EXTENSION

EIDO_PRIORITY = {1: 10, 2: 6, 3: 3}  # meldkamer prio -> incidentCommonPriorityNumber (0-10, 10 highest)


# Our components' $ids are name-based UUIDs (RFC 9562 v5) in this namespace: the same photo or report has the
# same $id in every document, so a receiver can tell a repeat from news.
COMPONENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:burgermelding:eido:component")


PIDF = {
    "": "urn:ietf:params:xml:ns:pidf",
    "gp": "urn:ietf:params:xml:ns:pidf:geopriv10",
    "dm": "urn:ietf:params:xml:ns:pidf:data-model",
    "gml": "http://www.opengis.net/gml",
    "gs": "http://www.opengis.net/pidflo/1.0",
}


for _prefix, _uri in PIDF.items():
    if _prefix:  # (the default namespace is set when writing: see pidf_lo)
        ET.register_namespace(_prefix, _uri)


def tracking_id(agency: str, incident_id: str) -> str:
    """The incident tracking identifier (NENA-STA-010 form), the root `$id` of every EIDO about the incident."""
    return f"urn:emergency:uid:incidentid:{incident_id}:{agency}"


def component_id(kind: str, key: str) -> str:
    return str(uuid.uuid5(COMPONENT_NAMESPACE, f"{kind}:{key}"))


def media_id(photo_id: str) -> str:
    """The `$id` of a photo's mediaComponent (the event summary names photos by it)."""
    return component_id("media", photo_id)


def ref(component: dict[str, Any]) -> dict[str, str]:
    return {"$ref": component["$id"]}


class EidoWriter:
    """Writes the components of one document, each with the prologue: when, and by which agency."""

    def __init__(self, agency: str, incident_id: str, now: datetime) -> None:
        self.agency, self.incident_id, self.stamp = agency, incident_id, now.isoformat()

    def component(self, kind: str, key: str, **members: Any) -> dict[str, Any]:
        present = {name: value for name, value in members.items() if value not in (None, [], "")}
        return {
            "$id": component_id(kind, key),
            "lastUpdateTimeStamp": self.stamp,
            "updatedByAgencyReference": {"$ref": self.agency},
            **present,
        }

    def document(self, **components: Any) -> dict[str, Any]:
        """The EIDO: the root prologue, our agency, and the given components (empty ones left out)."""
        present = {name: value for name, value in components.items() if value}
        uses_digests = any("digestSha256" in media for media in present.get("mediaComponent", []))
        return {
            "$id": tracking_id(self.agency, self.incident_id),
            "lastUpdateTimeStamp": self.stamp,
            "updatedByAgencyReference": {"$ref": self.agency},
            "eidoVersion": EIDO_VERSION,
            **({"eidoExtensionId": [MEDIA_DIGEST_EXTENSION]} if uses_digests else {}),
            "issuingElementIdentification": f"dispatch-bridge.{self.agency}",
            "agencyComponent": [
                {
                    "$id": self.agency,
                    "lastUpdateTimeStamp": self.stamp,
                    "updatedByAgencyReference": {"$ref": self.agency},
                    # Registry values as in NENA's samples; a Dutch meldkamer's own are a setting to come.
                    "agencyRoleDescriptionRegistryText": ["CallReceiving"],
                    "agencyType": ["psap"],
                }
            ],
            **present,
        }

    def media(
        self, report: ReportSubmitted, photos: list[PhotoRef], photo_urls: dict[str, str]
    ) -> list[dict[str, Any]]:
        """A link the meldkamer can fetch for each photo, and the SHA-256 it must match (our extension)."""
        numbers = {p.photo_id: i + 1 for i, p in enumerate(report.photos)}
        return [
            {
                **self.component(
                    "media",
                    p.photo_id,
                    uri=photo_urls[p.photo_id],
                    contentType=p.content_type,
                    label=f"{p.kind} {numbers.get(p.photo_id, 0)} of {report.reference}",
                ),
                "$id": media_id(p.photo_id),
                "digestSha256": p.sha256,
            }
            for p in photos
        ]

    def notes(self, key: str, text: str, cautions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        # notesActionComments is HTML5: a citizen's words are text, never markup.
        return self.component(
            "notes",
            key,
            notesActionComments=html.escape(text[:2000]),
            cautionReference=[ref(c) for c in cautions or []],
        )


def pidf_lo(location: Location, entity: str, observed_at: datetime) -> str:
    """The place as a PIDF-LO document (RFC 4119): a circle of the GPS accuracy (RFC 5491), or a point."""

    def q(prefix: str, name: str) -> str:
        return f"{{{PIDF[prefix]}}}{name}"

    presence = ET.Element(q("", "presence"), {"entity": entity})
    device = ET.SubElement(presence, q("dm", "device"), {"id": "device"})
    geopriv = ET.SubElement(device, q("gp", "geopriv"))
    info = ET.SubElement(geopriv, q("gp", "location-info"))
    crs = {"srsName": "urn:ogc:def:crs:EPSG::4326"}
    if location.accuracy_m:
        shape = ET.SubElement(info, q("gs", "Circle"), crs)
        ET.SubElement(shape, q("gml", "pos")).text = f"{location.lat} {location.lon}"
        ET.SubElement(shape, q("gs", "radius"), {"uom": "urn:ogc:def:uom:EPSG::9001"}).text = f"{location.accuracy_m:g}"
    else:
        shape = ET.SubElement(info, q("gml", "Point"), crs)
        ET.SubElement(shape, q("gml", "pos")).text = f"{location.lat} {location.lon}"
    ET.SubElement(geopriv, q("gp", "usage-rules"))
    ET.SubElement(geopriv, q("gp", "method")).text = "GPS"
    ET.SubElement(device, q("dm", "timestamp")).text = observed_at.isoformat()
    # ElementTree keeps one registry of prefixes for the process, and CAP alerts have a default namespace of
    # their own: PIDF's is set right before writing (no await in between), not once at import.
    ET.register_namespace("", PIDF[""])
    return ET.tostring(presence, encoding="unicode", xml_declaration=False)


def callback_uris(callback_uri: str, contact: ContactDetails | None) -> list[str]:
    """How to reach the reporting party: through us (the meldkamer's callbacks reach the citizen's app), and
    directly only if the citizen consented to share a phone number or address."""
    uris = [callback_uri]
    if contact is not None and contact.share_with_police:
        if contact.phone:
            uris.append("tel:" + "".join(c for c in contact.phone if c.isdigit() or c == "+"))
        if contact.email:
            uris.append(f"mailto:{contact.email}")
    return uris


def build_eido(
    *,
    incident_id: str,
    priority: int,
    report: ReportSubmitted,
    photo_urls: dict[str, str],
    agency: str,
    callback_uri: str,
    now: datetime,
) -> dict[str, Any]:
    """The EIDO of a new incident, from its first report."""
    write = EidoWriter(agency, incident_id, now)
    category = CATEGORIES[report.category]
    location = write.component(
        "location",
        report.report_id,
        locationTypeDescriptionRegistryText="CurrentIncident",
        locationByValue=pidf_lo(report.location, f"pres:{report.reference}@{agency}", report.observed_at),
        locationDescriptionText=report.location.description,
    )
    callback = write.component(
        "callback", report.report_id, callBackInformationUri=callback_uris(callback_uri, report.contact)
    )
    person = write.component(
        "person",
        report.report_id,
        personIncidentRoleRegistryText=["ReportingParty", "Witness"],
        callBackReference=ref(callback),
    )
    cautions = (
        [
            write.component(
                "caution",
                report.report_id,
                cautionTypeInternalText="levensgevaar / danger to life",
                cautionTypeCommonRegistryText="DangerToLife",
                cautionSeverity="highest",
            )
        ]
        if report.danger_to_life
        else []
    )
    notes = [write.notes(report.report_id, report.description, cautions)]
    contact = report.contact
    if contact is not None and contact.share_with_police and contact.name:
        notes.append(write.notes(f"contact:{report.report_id}", f"Naam melder / reporting party: {contact.name}"))
    media = write.media(report, report.photos, photo_urls)
    incident = write.component(
        "incident",
        incident_id,
        incidentTypeCommonRegistryText=category.apco,
        incidentTypeInternalCode=category.lmc,
        incidentTypeInternalText=category.name_nl,
        incidentStatusCommonRegistryText=["Active"],
        # EIDO has no member for "happening now": the meldkamer's own status text says it (and the priority).
        incidentStatusInternalText=["InProgress"] if report.in_progress else None,
        internalIncidentId=incident_id,
        incidentCommonPriorityNumber=EIDO_PRIORITY[priority],
        incidentPriorityInternalText=str(priority),
        locationReference=[ref(location)],
        personReference=[ref(person)],
        notesReference=[ref(n) for n in notes],
        mediaReferences=[ref(m) for m in media],
    )
    return write.document(
        incidentComponent=incident,
        locationComponent=[location],
        personComponent=[person],
        notesComponent=notes,
        cautionComponent=cautions,
        mediaComponent=media,
        callbackComponent=[callback],
    )


def update_eido(
    *,
    incident_id: str,
    update_id: str,
    agency: str,
    now: datetime,
    notes: str | None,
    media: list[dict[str, Any]],
    merges: list[dict[str, Any]],
) -> dict[str, Any]:
    """The EIDO of an update: the incident's root `$id` again, with what is new (a note, photos, merges)."""
    write = EidoWriter(agency, incident_id, now)
    return write.document(
        notesComponent=[write.notes(update_id, notes)] if notes else [], mediaComponent=media, mergeComponent=merges
    )


def merge_component(agency: str, incident_id: str, other_id: str, direction: str, now: datetime) -> dict[str, Any]:
    """EIDO MergeInformationType: the other incident, and whether this one replaces it or is replaced."""
    return EidoWriter(agency, incident_id, now).component(
        "merge",
        f"{incident_id}:{other_id}",
        incidentTrackingIdentifier=tracking_id(agency, other_id),
        incidentMergeDirectionCode=direction,
    )
