"""What every part of the stack shares: a service-agnostic library (web, server, upstream, jsonlog, telemetry), the
config package, the one error shape, the registry of services, and the composition root (stack).

Who may import whom (docs/architecture.md; tests/test_architecture.py holds it): gateway/ and services/ import
shared/; nothing in shared/ imports gateway/ or services/ by name. shared/stack/ is the composition root: it finds
the services through the registry (shared/registry.py, entry points) and builds the stack from them.
"""
