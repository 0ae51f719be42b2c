"""The message catalogue: every message one service sends another through its outbox, with its kind, sender,
destination, path and model, in one place.

Three places read it: the sender's `enqueue` (which checks the payload is the message's model), the receiver's
route (which is mounted at the message's path and records the message's kind in its inbox) and the relay's
handlers (keyed by kind). So a kind, a path or a service's name cannot drift between them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel

from burgermelding_shared.burgernet import PublishedAction
from burgermelding_shared.contracts import (
    CallerLinkEvent,
    CallerLinkIssued,
    CallerLinkRevoked,
    CitizenMessage,
    DispatcherMessage,
    GroupsMerged,
    IncidentEvent,
    IncidentUpdate,
    LegalHold,
    MeldkamerAppeal,
    ReportEvents,
    ReportSubmitted,
    ReportWithdrawn,
    RequestForService,
    RetentionApplied,
    VerificationCompleted,
)


class Service(StrEnum):
    """The services that send each other messages, by the one name each has everywhere: a destination in an
    outbox, a caller's name in a service token, a source in an inbox."""

    REPORT_INTAKE = "report-intake"
    VERIFICATION = "verification"
    DISPATCH_BRIDGE = "dispatch-bridge"
    MELDKAMER = "meldkamer"


@dataclass(frozen=True)
class Message:
    kind: str
    sender: Service
    destination: Service
    path: str  # on the destination; a template where it names a resource (`path_for`)
    model: type[BaseModel]

    def path_for(self, **names: str) -> str:
        return self.path.format(**names)

    def under(self, prefix: str) -> str:
        """The path as a receiver's router with this prefix mounts it (a router of another prefix fails at
        import, so a route cannot drift from its message)."""
        if not self.path.startswith(prefix + "/"):
            raise ValueError(f"{self.kind} goes to {self.path}, not under {prefix}")
        return self.path[len(prefix) :]


# report-intake ->
REPORT_FOR_VERIFICATION = Message(
    "report.submitted", Service.REPORT_INTAKE, Service.VERIFICATION, "/internal/v1/jobs", ReportSubmitted
)
REPORT_FOR_BRIDGE = Message(
    "report.submitted", Service.REPORT_INTAKE, Service.DISPATCH_BRIDGE, "/internal/v1/reports", ReportSubmitted
)
RETENTION_FOR_VERIFICATION = Message(
    "report.retention", Service.REPORT_INTAKE, Service.VERIFICATION, "/internal/v1/retention", RetentionApplied
)
RETENTION_FOR_BRIDGE = Message(
    "report.retention", Service.REPORT_INTAKE, Service.DISPATCH_BRIDGE, "/internal/v1/retention", RetentionApplied
)
REPORT_WITHDRAWN = Message(
    "report.withdrawn", Service.REPORT_INTAKE, Service.DISPATCH_BRIDGE, "/internal/v1/withdrawals", ReportWithdrawn
)
CITIZEN_MESSAGE = Message(
    "citizen.message", Service.REPORT_INTAKE, Service.DISPATCH_BRIDGE, "/internal/v1/citizen-messages", CitizenMessage
)
CALLER_LINK_EVENT = Message(
    "caller_link.event",
    Service.REPORT_INTAKE,
    Service.DISPATCH_BRIDGE,
    "/internal/v1/caller-link-events",
    CallerLinkEvent,
)

# verification ->
VERIFICATION_COMPLETED = Message(
    "verification.completed",
    Service.VERIFICATION,
    Service.DISPATCH_BRIDGE,
    "/internal/v1/verifications",
    VerificationCompleted,
)
GROUPS_MERGED = Message(
    "groups.merged", Service.VERIFICATION, Service.DISPATCH_BRIDGE, "/internal/v1/group-merges", GroupsMerged
)

# dispatch-bridge ->
REPORT_EVENTS = Message(
    "report.events", Service.DISPATCH_BRIDGE, Service.REPORT_INTAKE, "/internal/v1/report-events", ReportEvents
)
DISPATCHER_MESSAGE = Message(
    "dispatcher.message", Service.DISPATCH_BRIDGE, Service.REPORT_INTAKE, "/internal/v1/messages", DispatcherMessage
)
LEGAL_HOLD = Message(
    "legal_hold", Service.DISPATCH_BRIDGE, Service.REPORT_INTAKE, "/internal/v1/legal-holds", LegalHold
)
CALLER_LINK_ISSUED = Message(
    "caller_link.issued", Service.DISPATCH_BRIDGE, Service.REPORT_INTAKE, "/internal/v1/caller-links", CallerLinkIssued
)
CALLER_LINK_REVOKED = Message(
    "caller_link.revoked",
    Service.DISPATCH_BRIDGE,
    Service.REPORT_INTAKE,
    "/internal/v1/caller-links/revocations",
    CallerLinkRevoked,
)
BURGERNET_ACTION = Message(
    "burgernet.action",
    Service.DISPATCH_BRIDGE,
    Service.REPORT_INTAKE,
    "/internal/v1/burgernet/actions",
    PublishedAction,
)
REQUEST_FOR_SERVICE = Message(
    "meldkamer.request_for_service",
    Service.DISPATCH_BRIDGE,
    Service.MELDKAMER,
    "/v1/requests-for-service",
    RequestForService,
)
INCIDENT_UPDATE = Message(
    "meldkamer.update",
    Service.DISPATCH_BRIDGE,
    Service.MELDKAMER,
    "/v1/requests-for-service/{request_id}/updates",
    IncidentUpdate,
)

# meldkamer -> (signed webhooks)
INCIDENT_EVENT = Message(
    "incident.event", Service.MELDKAMER, Service.DISPATCH_BRIDGE, "/v1/meldkamer/callbacks", IncidentEvent
)
BURGERNET_REQUEST = Message(
    "burgernet.request", Service.MELDKAMER, Service.DISPATCH_BRIDGE, "/v1/meldkamer/burgernet-actions", MeldkamerAppeal
)

CATALOGUE: tuple[Message, ...] = (
    REPORT_FOR_VERIFICATION,
    REPORT_FOR_BRIDGE,
    RETENTION_FOR_VERIFICATION,
    RETENTION_FOR_BRIDGE,
    REPORT_WITHDRAWN,
    CITIZEN_MESSAGE,
    CALLER_LINK_EVENT,
    VERIFICATION_COMPLETED,
    GROUPS_MERGED,
    REPORT_EVENTS,
    DISPATCHER_MESSAGE,
    LEGAL_HOLD,
    CALLER_LINK_ISSUED,
    CALLER_LINK_REVOKED,
    BURGERNET_ACTION,
    REQUEST_FOR_SERVICE,
    INCIDENT_UPDATE,
    INCIDENT_EVENT,
    BURGERNET_REQUEST,
)


def retention_for(destination: Service) -> Message:
    return {Service.VERIFICATION: RETENTION_FOR_VERIFICATION, Service.DISPATCH_BRIDGE: RETENTION_FOR_BRIDGE}[
        destination
    ]
