"""Where an incident is, in words: the address nearest to its centre, for the dispatchers ("Domplein 29, Utrecht").

Asked in the background, never on the way to the meldkamer: the first urgent report must reach it within half a
second, and PDOK's Locatieserver is a call over the internet that may be slow or down. This loop finds the
incidents whose centre has no address yet (a new incident, or one whose centre moved as reports joined it) and
asks the geocoder. While the geocoder is down it waits longer each time (up to MAX_BACKOFF_SECONDS) and asks
again; the console shows coordinates meanwhile. An answer is written only if the centre is still the one asked
about, so a report that moved it meanwhile gets its own answer at the next pass.

Every replica of the bridge runs the loop: two may ask about the same incident at the same moment, and both
write the same answer. That costs a second question to PDOK now and then, not a wrong address.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlmodel import col

from burgermelding_shared.app import Runtime
from burgermelding_shared.background import BackgroundLoop
from burgermelding_shared.geocoding import Geocoder, GeocoderUnavailable, geocoder_for
from burgermelding_shared.timeutil import utcnow
from dispatch_bridge.models import Incident

log = logging.getLogger(__name__)

BATCH = 20
MAX_BACKOFF_SECONDS = 300.0
# Only incidents seen lately are looked at (an index range, every pass): an older one without an address (from
# before this loop existed) keeps showing its coordinates.
RECENT = timedelta(days=7)


class IncidentAddresses(BackgroundLoop):
    name = "incident-addresses"
    poll_seconds = 2.0  # a new incident's address shows about this long after its place is known

    def __init__(self, runtime: Runtime, geocoder: Geocoder | None = None) -> None:
        super().__init__()
        self.runtime = runtime
        settings = runtime.settings
        self.geocoder = geocoder or geocoder_for(settings.geocoder, settings.pdok_locatieserver_url)
        self.backoff = 0.0  # while the geocoder is down: how long to wait before asking again

    async def idle_seconds(self) -> float:
        return self.backoff or self.poll_seconds

    def more_waiting(self, done: int) -> bool:
        return done >= BATCH

    async def run_once(self) -> int:
        async with self.runtime.db.sessions() as session:
            waiting = (
                await session.execute(
                    select(col(Incident.id), col(Incident.lat), col(Incident.lon))
                    .where(
                        col(Incident.last_seen) >= utcnow() - RECENT,
                        col(Incident.lat).is_not(None),
                        col(Incident.lon).is_not(None),
                        or_(
                            col(Incident.address_lat).is_(None),
                            col(Incident.address_lat) != col(Incident.lat),
                            col(Incident.address_lon) != col(Incident.lon),
                        ),
                    )
                    .order_by(col(Incident.priority), col(Incident.created_at).desc())  # the urgent and new first
                    .limit(BATCH)
                )
            ).all()
        done = 0
        for incident_id, lat, lon in waiting:
            assert lat is not None and lon is not None  # the query asked for placed incidents only
            try:
                nearest = await self.geocoder.describe(lat, lon)
            except GeocoderUnavailable as exc:
                self.backoff = min(MAX_BACKOFF_SECONDS, max(self.poll_seconds, self.backoff * 2))
                log.warning(
                    "no address for incident %s yet, asking again in %.0f s: %s", incident_id, self.backoff, exc
                )
                return done
            async with self.runtime.db.transaction() as session:
                await session.execute(
                    update(Incident)
                    .where(col(Incident.id) == incident_id, col(Incident.lat) == lat, col(Incident.lon) == lon)
                    .values(
                        address=nearest.label[:200] if nearest else None,
                        address_distance_m=nearest.distance_m if nearest else None,
                        address_lat=lat,
                        address_lon=lon,
                    )
                )
            done += 1
        self.backoff = 0.0
        return done
