"""The caller's page (issue #33): a dispatcher sent a caller a one-time link by SMS; here the caller opens it,
says whether they share images, and (with consent) shares them. No app, no account, no third-party request."""
