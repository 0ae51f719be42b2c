"""A caller's camera (issue #33): one-time links a dispatcher sends a caller by SMS, and what becomes of them."""
