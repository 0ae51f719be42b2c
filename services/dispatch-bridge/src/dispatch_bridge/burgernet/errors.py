"""Why a Burgernet request is refused: invalid, unknown, or the action has ended."""

from __future__ import annotations

from burgermelding_shared.errors import ServiceError
from dispatch_bridge.models import BurgernetAction


def invalid(code: str, en: str, nl: str) -> ServiceError:
    return ServiceError(422, code, en, detail_nl=nl)


def not_found() -> ServiceError:
    return ServiceError(
        404, "burgernet_action_not_found", "no such Burgernet action", detail_nl="deze Burgernet-actie bestaat niet"
    )


def already_ended(action: BurgernetAction) -> ServiceError:
    return ServiceError(
        409,
        "burgernet_action_ended",
        f"this action is already {action.status}",
        detail_nl="deze Burgernet-actie is al beëindigd",
    )
