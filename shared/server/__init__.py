"""Running an app: the runner (startup gates, uvicorn with our HTTP protocol and limits), worker processes sharing
one socket, clean startup failures, and the splice(2) extension our server protocol offers.

May import: shared.config, shared.telemetry, shared.web, shared.registry (to find a service's app). Knows no service
by name.
"""
