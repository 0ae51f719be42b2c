"""The rules of an EIDO (NENA-STA-021, EIDO-JSON 1.0) as a strict control-room system checks them.

Written from NENA's schema (NENA911/EIDO-JSON `Schema/openapi.yaml`, `EmergencyIncidentDataObjectType`) and the
standard's samples, for the components we send, and stricter than the schema where the schema is loose:

- the members of each component type we use are the schema's, and no others (the schema itself does not forbid
  extra members; a receiver that ignores unknown members would silently lose what we meant to say), except the
  members of an extension the document declares in `eidoExtensionId`;
- a reference is `{"$ref": "<$id>"}` naming a component of the same document (the schema's ReferenceType does
  not even insist on an object, and cannot say that the `$id` must exist);
- `null` is never a value (the schema has no `nullable`: a member without a value is left out);
- `locationByValue` is a PIDF-LO XML document (RFC 4119, RFC 5491), `incidentComponent` is one object.

The simulated meldkamer refuses a document that breaks any of these; the suite checks every document the bridge
sends with the same function. Registry values (incident type, roles) are not checked: the registries are
NENA's, and we cannot read them here.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # what the meldkamer receives: a DOCTYPE is refused before parsing
from datetime import datetime
from typing import Any

EIDO_VERSION = "1.0"
PIDF_NAMESPACE = "urn:ietf:params:xml:ns:pidf"
# Our one extension: the SHA-256 of a photo on its mediaComponent, so the meldkamer can check what it fetched.
# EIDO has no member for a digest; the schema lets a document declare the extensions it uses.
MEDIA_DIGEST_EXTENSION = "urn:burgermelding:eido:extension:mediaDigestSha256:1"
EXTENSION_MEMBERS = {MEDIA_DIGEST_EXTENSION: {"mediaComponent": {"digestSha256": "sha256"}}}

# Member kinds: str, strs (array of strings), ref ({"$ref"}), refs (array of them), int, bool, datetime, pidf,
# sha256, object (embedded, not checked further), enum:<a|b|c>.
PROLOGUE = {
    "$id": "str",
    "lastUpdateTimeStamp": "datetime",
    "updatedByAgencyReference": "ref",
    "updatedByAgentReference": "ref",
    "AlternateValueReferences": "refs",
    "externalInformationSourceReferences": "refs",
    "mediaReferences": "refs",
}
PROLOGUE_REQUIRED = ("$id", "lastUpdateTimeStamp", "updatedByAgencyReference")
COMPONENTS: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {  # members beyond the prologue, and required
    "agencyComponent": (
        {
            "agencyJcard": "str",
            "agencyRoleDescriptionRegistryText": "strs",
            "agencyType": "strs",
            "notesReference": "refs",
            "incidentOwningAgencyIndicator": "bool",
            "actingOnBehalfOfAgencyReference": "refs",
            "agencyCallLegState": "objects",
        },
        ("agencyRoleDescriptionRegistryText", "agencyType"),
    ),
    "agentComponent": (
        {
            "agentJcard": "str",
            "agentWorkstationPositionIdentification": "str",
            "agentRoleRegistryText": "strs",
            "agencyReference": "ref",
            "notesReference": "refs",
            "agentCallLegState": "objects",
        },
        ("agentRoleRegistryText", "agencyReference"),
    ),
    "incidentComponent": (
        {
            "incidentTypeCommonRegistryText": "str",
            "incidentTypeInternalCode": "str",
            "incidentTypeInternalText": "str",
            "incidentStatusCommonRegistryText": "strs",
            "incidentStatusInternalText": "strs",
            "internalIncidentId": "str",
            "incidentPriorityInternalText": "str",
            "incidentCommonPriorityNumber": "int",
            "beatOrDispatchGroupText": "str",
            "reportNumberType": "str",
            "documentIdentification": "strs",
            "agentReference": "refs",
            "locationReference": "refs",
            "personReference": "refs",
            "organizationReference": "refs",
            "vehicleReference": "refs",
            "notesReference": "refs",
            "dispositionComponent": "objects",
        },
        ("incidentTypeCommonRegistryText",),
    ),
    "locationComponent": (
        {
            "locationTypeDescriptionRegistryText": "str",
            "locationByValue": "pidf",
            "locationByReferenceUrl": "str",
            "locationDereferencedFromReference": "ref",
            "locationDescriptionText": "str",
            "crossStreetByValue": "strs",
            "intersectingStreetByValue": "strs",
            "crossStreetByReferenceUrl": "strs",
            "intersectingStreetByReferenceUrl": "strs",
            "cellTowerSectorId": "str",
            "localIdentifier": "strs",
            "additionalDataReference": "refs",
            "notesReference": "refs",
        },
        ("locationTypeDescriptionRegistryText",),
    ),
    "personComponent": (
        {
            "personIncidentRoleRegistryText": "strs",
            "ncPersonComponent": "object",
            "callIdentifier": "strs",
            "locationReference": "refs",
            "destinationReference": "ref",
            "eta": "datetime",
            "notesReference": "refs",
            "additionalDataReference": "refs",
            "callBackReference": "ref",
            "personCallLegState": "objects",
            "itemReference": "refs",
        },
        ("personIncidentRoleRegistryText",),
    ),
    "notesComponent": (
        {"notesActionComments": "str", "agentReference": "ref", "cautionReference": "refs"},
        ("notesActionComments",),
    ),
    "mediaComponent": ({"uri": "str", "contentType": "str", "label": "str"}, ("uri", "contentType")),
    "callbackComponent": ({"callBackInformationUri": "strs", "deviceContactHeader": "str", "updatedCbn": "object"}, ()),
    "cautionComponent": (
        {
            "cautionTypeInternalText": "str",
            "cautionTypeCommonRegistryText": "str",
            "cautionTypeCommonSubRegistryText": "strs",
            "cautionSource": "str",
            "cautionSeverity": "enum:highest|high|normal|low|lowest",
            "startDate": "datetime",
        },
        ("cautionTypeInternalText", "cautionTypeCommonRegistryText", "cautionSeverity"),
    ),
    "mergeComponent": (
        {"incidentTrackingIdentifier": "str", "incidentMergeDirectionCode": "enum:REPLACING|REPLACED|SPLIT"},
        ("incidentTrackingIdentifier", "incidentMergeDirectionCode"),
    ),
    "linkComponent": (
        {
            "incidentTrackingIdentifier": "str",
            "transactionReasonText": "str",
            "involvedAgencyReference": "ref",
            "linkDirectionCode": "enum:PARENT|CHILD|RELATED|UNLINK",
        },
        ("incidentTrackingIdentifier", "linkDirectionCode"),
    ),
}
ROOT = {
    "eidoVersion": f"enum:{EIDO_VERSION}",
    "eidoExtensionId": "strs",
    "issuingElementIdentification": "str",
    "@context": "object",
    **{name: "components" for name in COMPONENTS},
}
ROOT_REQUIRED = ("eidoVersion", "issuingElementIdentification", "agencyComponent")


def problems(document: Any) -> list[str]:
    """Everything wrong with an EIDO document, each as `<where>: <what>`; empty when it is valid."""
    if not isinstance(document, dict):
        return ["$: an EIDO is a JSON object"]
    found: list[str] = []
    declared = document.get("eidoExtensionId")
    extensions: list[Any] = declared if isinstance(declared, list) else []
    _members(document, "$", {**PROLOGUE, **ROOT}, (*PROLOGUE_REQUIRED, *ROOT_REQUIRED), found)
    ids: list[str] = [document["$id"]] if isinstance(document.get("$id"), str) else []
    components: list[tuple[str, dict[str, Any]]] = [("$", document)]
    for name, (members, required) in COMPONENTS.items():
        if name not in document:
            continue
        value = document[name]
        if value is None:
            found.append(f"$.{name}: null is not a value (leave the member out)")
            continue
        items = [value] if name == "incidentComponent" else value
        if name == "incidentComponent" and not isinstance(value, dict):
            found.append("$.incidentComponent: one object (an EIDO describes one incident), not a list")
            continue
        if not isinstance(items, list):
            found.append(f"$.{name}: an array of components")
            continue
        if name != "incidentComponent" and not items:
            found.append(f"$.{name}: an empty array (leave the member out)")
        extra = {
            member: kind
            for extension in extensions
            for member, kind in EXTENSION_MEMBERS.get(extension, {}).get(name, {}).items()
        }
        for index, item in enumerate(items):
            where = f"$.{name}" if name == "incidentComponent" else f"$.{name}[{index}]"
            if not isinstance(item, dict):
                found.append(f"{where}: a component is an object")
                continue
            _members(item, where, {**PROLOGUE, **members, **extra}, (*PROLOGUE_REQUIRED, *required), found)
            components.append((where, item))
            if isinstance(item.get("$id"), str):
                ids.append(item["$id"])
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        found.append(f"$: $id used twice: {', '.join(duplicates)}")
    for extension in extensions:
        if extension not in EXTENSION_MEMBERS:
            found.append(f"$.eidoExtensionId: unknown extension {extension!r}")
    for where, item in components:
        for member, target in _references(item):
            if target not in ids:
                found.append(f"{where}.{member}: refers to {target!r}, which is no component of this document")
    return found


def _members(
    item: dict[str, Any], where: str, members: dict[str, str], required: tuple[str, ...], found: list[str]
) -> None:
    for name in required:
        if name not in item:
            found.append(f"{where}: {name} is required")
    for name, value in item.items():
        kind = members.get(name)
        if kind is None:
            found.append(f"{where}.{name}: not a member of this component (nor of a declared extension)")
        elif kind != "components":
            problem = _kind_problem(kind, value)
            if problem:
                found.append(f"{where}.{name}: {problem}")


def _kind_problem(kind: str, value: Any) -> str | None:
    """What is wrong with a member's value for its kind, or None."""
    if value is None:
        return "null is not a value (leave the member out)"
    if kind.startswith("enum:"):
        return None if value in kind[5:].split("|") else f"one of {kind[5:].replace('|', ', ')}"
    checks = {
        "str": lambda v: isinstance(v, str) and v != "",
        "strs": lambda v: isinstance(v, list) and bool(v) and all(isinstance(s, str) and s for s in v),
        "ref": _is_reference,
        "refs": lambda v: isinstance(v, list) and bool(v) and all(_is_reference(r) for r in v),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
        "datetime": _is_timestamp,
        "pidf": _is_pidf_lo,
        "sha256": lambda v: isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v),
        "object": lambda v: isinstance(v, dict),
        "objects": lambda v: isinstance(v, list) and bool(v) and all(isinstance(o, dict) for o in v),
    }
    expected = {
        "str": "a non-empty string",
        "strs": "a non-empty array of strings",
        "ref": 'a reference {"$ref": "<$id>"}',
        "refs": 'a non-empty array of references {"$ref": "<$id>"}',
        "int": "an integer",
        "bool": "true or false",
        "datetime": "a date-time with its UTC offset (RFC 3339)",
        "pidf": "a PIDF-LO XML document (a <presence> of urn:ietf:params:xml:ns:pidf)",
        "sha256": "64 lowercase hex digits",
        "object": "an object",
        "objects": "a non-empty array of objects",
    }
    return None if checks[kind](value) else expected[kind]


def _is_reference(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"$ref"} and isinstance(value["$ref"], str) and value["$ref"] != ""


def _is_timestamp(value: Any) -> bool:
    if not isinstance(value, str) or "T" not in value:
        return False
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).utcoffset() is not None
    except ValueError:
        return False


def _is_pidf_lo(value: Any) -> bool:
    if not isinstance(value, str) or "<!DOCTYPE" in value.upper() or "<!ENTITY" in value.upper():
        return False
    try:
        root = ET.fromstring(value)  # noqa: S314  (no DOCTYPE, so no entities to expand)
    except ET.ParseError:
        return False
    return root.tag == f"{{{PIDF_NAMESPACE}}}presence"


def _references(item: dict[str, Any]) -> list[tuple[str, str]]:
    """(member, target $id) of every reference in a component."""
    found = []
    for name, value in item.items():
        if not (name.endswith(("Reference", "References"))):
            continue
        for ref in value if isinstance(value, list) else [value]:
            if _is_reference(ref):
                found.append((name, ref["$ref"]))
    return found
