"""Talking to the meldkamer: EIDO documents, requests for service and their updates, its answers and status
callbacks, the 112 watch."""
