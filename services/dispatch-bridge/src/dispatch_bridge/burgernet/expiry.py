"""Actions end at their closing time."""

from __future__ import annotations

from sqlmodel import col, select

from burgermelding_shared.app import Runtime
from burgermelding_shared.background import BackgroundLoop
from burgermelding_shared.timeutil import utcnow
from dispatch_bridge.audit import BRIDGE
from dispatch_bridge.burgernet.actions import end_action
from dispatch_bridge.models import BurgernetAction


class BurgernetDeadlines(BackgroundLoop):
    """Every action ends with a closing message, also when its dispatcher forgets: past its closing time it is
    closed with the standard text. A loop over the table, so a restart loses no deadline."""

    name = "burgernet-deadlines"

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.runtime = runtime
        self.poll_seconds = runtime.settings.burgernet_deadline_poll_seconds

    async def run_once(self) -> int:
        async with self.runtime.db.transaction() as session:
            query = (
                select(BurgernetAction)
                .where(BurgernetAction.status == "open", col(BurgernetAction.closes_at) <= utcnow())
                .limit(20)
            )
            if not self.runtime.db.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            due = (await session.execute(query)).scalars().all()
            for action in due:
                await end_action(
                    session,
                    self.runtime.settings,
                    action,
                    BRIDGE,
                    "expired",
                    None,
                    None,
                    reason="its closing time passed",
                )
        return len(due)
