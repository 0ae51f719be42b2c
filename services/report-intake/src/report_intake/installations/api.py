"""Routes for registering and revoking an app installation."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from burgermelding_shared.app import RuntimeDep
from burgermelding_shared.errors import ServiceError, error_responses
from burgermelding_shared.ratelimit import client_address, rate_limited
from report_intake.config import IntakeSettings
from report_intake.installations import credentials
from report_intake.installations import registration as registering
from report_intake.request_parts import CREDENTIAL_ERRORS, SenderDep, limits_of
from report_intake.schemas import (
    CHALLENGE,
    CHALLENGE_DIGEST,
    CHALLENGE_SOLUTION,
    InstallationChallenge,
    InstallationCreated,
    InstallationRegistration,
)

installation_router = APIRouter(prefix="/v1/installations", tags=["installations"])


def credential_to_revoke() -> ServiceError:
    return ServiceError(
        401,
        "installation_credential_required",
        "send the Installation-Credential to revoke",
        detail_nl="Stuur de Installation-Credential mee om die in te trekken",
    )


REGISTRATION_FLOW = (
    """Register the app once, before its first report:

1. `POST /v1/installations/challenges`: a challenge and a difficulty (`difficulty_bits`, 20 by default).
2. Find a `solution` (1-64 characters of A-Z a-z 0-9 _ -; a decimal counter 0, 1, 2, ... does) such that
   SHA-256 of the UTF-8 text `<challenge>:<solution>` starts with `difficulty_bits` zero bits. At 20 bits
   that takes about a million tries: roughly a second on a phone. Do it off the main thread.
3. `POST /v1/installations` with `{"challenge", "solution"}`: the credential, shown once. Keep it in the
   platform's secure storage and send it as the `Installation-Credential` header with every request.

Test vector for a solver (the examples in this document): challenge
`@challenge@` at 20 bits is solved by the counter `@solution@`: SHA-256 of
`<challenge>:@solution@` is `@digest@`.

Each challenge is good for ten minutes and for one registration. A lost answer means solving a new one.
The credential tells installations apart, never people: nothing about the phone, its owner or its address
is stored. `DELETE /v1/installations/current` revokes it (for example when the user resets the app).""".replace(
        "@challenge@", CHALLENGE
    )
    .replace("@solution@", CHALLENGE_SOLUTION)
    .replace("@digest@", CHALLENGE_DIGEST)
)


@installation_router.post(
    "/challenges",
    status_code=201,
    response_model=InstallationChallenge,
    summary="Step 1: a proof-of-work challenge for registering the app",
    description=REGISTRATION_FLOW,
)
async def new_challenge(runtime: RuntimeDep) -> InstallationChallenge:
    # Not limited: a challenge is stateless and cheap, and a limit per address would let one abuser behind a
    # shared address stop every phone beside it from registering.
    settings: IntakeSettings = runtime.settings
    issued = registering.issue_challenge(settings.token_secret, settings.installation_pow_bits)
    return InstallationChallenge(
        challenge=issued.value, difficulty_bits=issued.difficulty_bits, expires_at=issued.expires_at
    )


@installation_router.post(
    "",
    status_code=201,
    response_model=InstallationCreated,
    summary="Step 2: redeem a solved challenge for the installation's credential",
    description=REGISTRATION_FLOW,
    responses=error_responses(
        409,
        422,
        429,
        examples={
            409: [registering.replayed()],
            422: [
                registering.invalid_proof(20),
                registering.expired_challenge(),
                registering.invalid_challenge(),
                ServiceError(
                    422,
                    "validation_error",
                    "body.solution: Field required",
                    detail_nl="Het verzoek is niet geldig: body.solution: Field required",
                ),
            ],
            429: [rate_limited(42)],
        },
    ),
)
async def register_installation(
    registration: InstallationRegistration, request: Request, runtime: RuntimeDep
) -> InstallationCreated:
    address, limits = client_address(request), limits_of(runtime)
    registered = await registering.register(
        runtime.db,
        runtime.settings.token_secret,
        registration.challenge,
        registration.solution,
        lambda: limits.new_installation(address),
        await limits.address_pseudonym(address),
    )
    return InstallationCreated(installation_id=registered.installation_id, credential=registered.credential)


@installation_router.delete(
    "/current",
    status_code=204,
    response_class=Response,
    summary="Revoke this installation's credential",
    description="After this the credential is refused (401 `installation_revoked`); reports made with it keep "
    "their access tokens, but changing them needs the credential that made them.",
    responses=error_responses(401, examples={401: [*CREDENTIAL_ERRORS[401][:2], credential_to_revoke()]}),
)
async def revoke_installation(runtime: RuntimeDep, sender: SenderDep) -> Response:
    if sender.installation_id is None:
        raise credential_to_revoke()
    await credentials.revoke(runtime.db, sender.installation_id)
    return Response(status_code=204)
