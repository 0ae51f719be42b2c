"""sms_sim: a simulated SMS gateway for development and tests (CM.com's JSON API, messages kept in memory)."""
