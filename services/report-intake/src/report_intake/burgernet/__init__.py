"""Burgernet actions and witness calls as the public sees them: the feed, CAP, receipts, and answers."""
