"""What a citizen's request carries: its credentials, Idempotency-Key, language and photos, as route dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from burgermelding_shared.app import Runtime, RuntimeDep
from burgermelding_shared.errors import error_responses, prefers_dutch
from burgermelding_shared.openapi import REQUIRED_HEADER, embedded_schema
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

# The citizen's credentials, as the documents name them (security schemes); the dependencies below read them.
CITIZEN_TOKEN = HTTPBearer(
    auto_error=False,
    scheme_name="citizenToken",
    description="The report's `access_token` from the creation answer, as `Authorization: Bearer <token>`: it "
    "opens that one report and nothing else.",
)
INSTALLATION_CREDENTIAL = APIKeyHeader(
    name="Installation-Credential",
    auto_error=False,
    scheme_name="installationCredential",
    description="The app's credential from `POST /v1/installations`. Optional: with it, limits count this "
    "installation, not the (shared) network address; without it, the address.",
)
# Taken when sent, never needed (see burgermelding_shared.openapi.settle_requirements).
OPTIONAL_SCHEMES = frozenset({"installationCredential", "open311ApiKey"})

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Required: a unique key per logical request (8-128 letters, digits and `._:-`); a retry sends "
        "the same key and gets the first answer again.",
        json_schema_extra=REQUIRED_HEADER,
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
    request: Request,
    runtime: RuntimeDep,
    installation_credential: Annotated[str | None, Depends(INSTALLATION_CREDENTIAL)],
) -> Sender:
    """Who sends this request: the installation whose credential comes with it (401 for a bad one), and the
    address, which limits use only as a coarse guard then."""
    address = client_address(request)
    if installation_credential is None:
        return Sender(address)
    installation = await credentials.authenticate(runtime.db, installation_credential)
    return Sender(address, installation.installation_id, installation.independent_source)


SenderDep = Annotated[Sender, Depends(sender_of)]


async def access_of(
    runtime: RuntimeDep,
    sender: SenderDep,
    token: Annotated[HTTPAuthorizationCredentials | None, Depends(CITIZEN_TOKEN)],
) -> Access:
    """A follow-up request on one report: counted against the sender, opened by the report's token."""
    await limits_of(runtime).using_token(sender)
    return Access(token.credentials.strip() if token and token.credentials.strip() else None, sender)


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
        max_video_bytes=settings.max_video_bytes if settings.max_videos_per_report > 0 else 0,
        max_videos=settings.max_videos_per_report,
    )
    return await read_multipart(request, limits, settings.blob_dir.parent / "uploads")


def multipart_body(with_report: bool) -> dict:
    properties: dict = {
        "photos": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "JPEG, PNG, WebP or HEIC photos and MP4, MOV or WebM videos (H.264, HEVC, AV1, VP8, "
            "VP9), the type decided by the content. A video's display copy is its poster frame; a playable copy "
            "without metadata is made beside it.",
        }
    }
    if with_report:
        properties["report"] = {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": embedded_schema(ReportSubmission),
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
