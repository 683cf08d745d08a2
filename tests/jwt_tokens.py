"""Throw-away JWT issuers for the tests: an ES256 key, its JSON Web Key Set, and tokens signed
with it (RFC 7515 compact serialisation, RFC 7518 3.4: the signature is R || S, 32 bytes each)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer:
    """One signing key of issuer `iss`, published as a JWKS with key id `kid`."""

    def __init__(self, iss: str, kid: str = "test-key") -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        self.iss = iss
        self.kid = kid
        self._key = ec.generate_private_key(ec.SECP256R1())

    @property
    def jwks(self) -> str:
        numbers = self._key.public_key().public_numbers()
        key = {"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": self.kid,
               "x": b64url(numbers.x.to_bytes(32, "big")), "y": b64url(numbers.y.to_bytes(32, "big"))}
        return json.dumps({"keys": [key]}, sort_keys=True)

    def token(self, subject: str = "alice", lifetime: int = 3600, **claims: Any) -> str:
        """A token of this issuer, valid for `lifetime` seconds from now (negative: expired)."""
        now = int(time.time())
        payload = {"iss": self.iss, "sub": subject, "iat": now, "exp": now + lifetime, **claims}
        return self.sign(payload)

    def sign(self, payload: dict[str, Any]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        header = {"alg": "ES256", "typ": "JWT", "kid": self.kid}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
        r, s = decode_dss_signature(self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
