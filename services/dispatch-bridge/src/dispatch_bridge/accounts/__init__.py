"""Dispatcher accounts: users and roles, passwords, bearer tokens, and logins that no one can lock."""
