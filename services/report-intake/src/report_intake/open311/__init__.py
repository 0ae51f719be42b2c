"""Open311 GeoReport v2: routes (api.py), wire formats (wire.py), services, service requests, integrators."""
