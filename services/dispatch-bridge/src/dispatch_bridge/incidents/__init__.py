"""Incidents: which event a report belongs to, routing it into a new or an open incident, merging and splitting."""
