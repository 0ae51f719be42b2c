"""A citizen's report: read and checked, stored with its photos, released to verification and the bridge, followed,
changed."""
