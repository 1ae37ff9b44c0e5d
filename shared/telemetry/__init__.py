"""What the stack says about itself: structlog setup and the access line, the Prometheus metrics base every service
extends, and redaction of secrets from text.

May import: shared.errors, starlette. Knows no service: a service's own metrics live in that service.
"""
