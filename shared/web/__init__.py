"""The frame every service's HTTP app is built in: the app factory with the standard pure-ASGI middleware (auth, Host
checks, access lines, the outermost guard), request body reading, JSON responses and ETag matching.

May import: shared.errors, shared.config, shared.telemetry, starlette. Knows no service.
"""
