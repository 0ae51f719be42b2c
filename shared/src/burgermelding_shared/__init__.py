"""What every Burgermelding service shares.

This library is imported by the services and never imports one of them: settings, database access and
migrations, the transactional outbox and inbox, the blob store, service-to-service authentication, signed
webhooks, structured logging with W3C trace context, one error type, health endpoints and the wire contracts.
"""
