"""The durable JSON-lines log that pathwayd and observerd keep: appends with fsync, replay at start, a sequence index,
snapshots, RFC 3339 timestamps, and the paged listing their HTTP APIs share.

May import: shared.errors, starlette (for the paged listing). Knows no service.
"""
