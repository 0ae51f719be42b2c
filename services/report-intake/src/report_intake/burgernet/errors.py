"""Why an action takes no answer: it does not exist, or it has ended."""

from __future__ import annotations

from burgermelding_shared.burgernet import PublishedAction
from burgermelding_shared.errors import ServiceError


def action_closed(action: PublishedAction | None = None) -> ServiceError:
    what = f"is {action.status}" if action is not None and action.status != "open" else "has ended"
    return ServiceError(
        409,
        "burgernet_action_closed",
        f"this Burgernet action {what}: it takes no more answers or photos",
        detail_nl="deze Burgernet-actie is beëindigd: er kunnen geen reacties of foto's meer bij",
    )


def unknown_action() -> ServiceError:
    return ServiceError(
        404, "burgernet_action_not_found", "no such Burgernet action", detail_nl="deze Burgernet-actie bestaat niet"
    )
