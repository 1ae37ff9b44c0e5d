"""A key's S3 secret at rest: sealed with the master key from the environment (`[auth] master_key`), MinIO's way.

SigV4 verification needs the secret itself (it signs with it), so for S3 a salted hash will not do: the record keeps
the secret encrypted with AES-256-GCM (the `cryptography` package's), under a key derived from the master key, with
the key id as associated data so that a sealed secret copied onto another key's record does not open. Without a
master key, keys are made without an S3 secret and sign no S3 request.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = "v1:"
NONCE_BYTES = 12


class Sealer:
    def __init__(self, master_key: str) -> None:
        # The master key is operator-chosen text (`openssl rand -base64 32`); SHA-256 makes it the AES key.
        self._aead = AESGCM(hashlib.sha256(b"lakehouse keys\0" + master_key.encode()).digest())

    def seal(self, key_id: str, secret: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, secret.encode(), key_id.encode())
        return VERSION + base64.b64encode(sealed).decode("ascii")

    def unseal(self, key_id: str, sealed: str) -> str | None:
        """The secret; None when `sealed` was not sealed for `key_id` under this master key."""
        if not sealed.startswith(VERSION):
            return None
        try:
            raw = base64.b64decode(sealed.removeprefix(VERSION), validate=True)
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], key_id.encode()).decode()
        except (ValueError, InvalidTag):
            return None


def sealer_of(master_key: str) -> Sealer | None:
    return Sealer(master_key) if master_key else None
