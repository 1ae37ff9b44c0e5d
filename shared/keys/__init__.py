"""Client keys: each a credential with scopes, checked at the gateway, stored in storaged under `_keys/`.

`records` is what a key is (and how its secret is hashed), `scopes` which scope each request needs (from the
service registry's rows), `store` the keys in storaged and each gateway worker's cache of them, `gate` the check
the auth middleware runs on a bearer that is not the root token. It imports shared only.
"""
