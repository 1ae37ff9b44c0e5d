"""The composition root: the `lakehouse` command, `lakehouse up` and its supervisor, status and the other commands
that talk to a running stack through its gateway, systemd units and `config check --for`.

May import anything in shared/. Finds services only through shared.registry (entry points), never by module name.
"""
