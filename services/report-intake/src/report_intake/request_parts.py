"""What a citizen's request carries: its credentials, Idempotency-Key, language and photos, as route dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from burgermelding_shared.app import Runtime, RuntimeDep
from burgermelding_shared.errors import error_responses, prefers_dutch
from burgermelding_shared.ratelimit import client_address
from report_intake.config import IntakeSettings
from report_intake.installations import credentials
from report_intake.installations.senders import Sender
from report_intake.limits import IntakeLimits
from report_intake.reports import access as reports_access
from report_intake.reports.access import Access
from report_intake.schemas import (
    ReportSubmission,
)
from report_intake.uploads import UploadedForm, UploadLimits, read_multipart

AuthorizationHeader = Annotated[str | None, Header(description="`Bearer <access_token>` from the creation answer")]


IdempotencyKeyHeader = Annotated[
    str | None, Header(alias="Idempotency-Key", description="A unique key per logical request (8-128 chars)")
]


InstallationCredentialHeader = Annotated[
    str | None,
    Header(
        alias="Installation-Credential",
        description="The app's credential from `POST /v1/installations`. With it, "
        "limits count this installation, not the (shared) network address; without it, the address.",
    ),
]


CREDENTIAL_ERRORS = {
    401: [credentials.invalid_credential(), credentials.revoked(), reports_access.credential_required()],
    403: [reports_access.installation_mismatch()],
}


TOKEN_ERRORS = error_responses(401, 403, 404, 429, examples=CREDENTIAL_ERRORS)


def language(request: Request) -> str:
    return "nl" if prefers_dutch(request) else "en"


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def limits_of(runtime: Runtime) -> IntakeLimits:
    limits: IntakeLimits = runtime.extras["limits"]
    return limits


async def sender_of(
    request: Request, runtime: RuntimeDep, installation_credential: InstallationCredentialHeader = None
) -> Sender:
    """Who sends this request: the installation whose credential comes with it (401 for a bad one), and the
    address, which limits use only as a coarse guard then."""
    address = client_address(request)
    if installation_credential is None:
        return Sender(address)
    installation = await credentials.authenticate(runtime.db, installation_credential)
    return Sender(address, installation.installation_id, installation.independent_source)


SenderDep = Annotated[Sender, Depends(sender_of)]


async def access_of(runtime: RuntimeDep, sender: SenderDep, authorization: AuthorizationHeader = None) -> Access:
    """A follow-up request on one report: counted against the sender, opened by the report's token."""
    await limits_of(runtime).using_token(sender)
    return Access(bearer_token(authorization), sender)


AccessDep = Annotated[Access, Depends(access_of)]


async def change_access_of(report_id: str, runtime: RuntimeDep, access: AccessDep) -> Access:
    """For a request that brings something to a report (photos, a message): the token (and the installation's
    credential) are checked before the body is judged (a JSON body is still parsed first by FastAPI) or an upload
    read, so that without them every such request gets the same 404 (or 401) and no upload is stored for it. The
    change checks them again in its own transaction."""
    async with runtime.db.sessions() as session:
        await reports_access.authorised_report(runtime, session, report_id, access, changing=True)
    return access


ChangeAccessDep = Annotated[Access, Depends(change_access_of)]


async def read_photos(request: Request, runtime: Runtime, require_report: bool) -> UploadedForm:
    settings: IntakeSettings = runtime.settings
    limits = UploadLimits(
        max_file_bytes=settings.max_photo_bytes,
        max_files=settings.max_photos_per_report,
        max_field_bytes=settings.max_report_json_bytes,
        max_fields=1 if require_report else 0,
    )
    return await read_multipart(request, limits, settings.blob_dir.parent / "uploads")


def multipart_body(with_report: bool) -> dict:
    properties: dict = {
        "photos": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "JPEG, PNG, WebP or HEIC photos (type decided by content).",
        }
    }
    if with_report:
        properties["report"] = {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": ReportSubmission.model_json_schema(),
            "description": "The report as JSON (schema ReportSubmission).",
        }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["report"] if with_report else ["photos"],
                        "properties": properties,
                    }
                }
            },
        }
    }
