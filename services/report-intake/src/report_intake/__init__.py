"""report-intake: the citizen-facing API behind the Burgermelding app."""
