"""App installations: registered with a proof of work, known by a credential, and who sent a request (its daily
pseudonym)."""
