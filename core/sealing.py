"""Sealed values: sensitive fields carried as salted digests.

A petitioner's name, ID number, phone and address never enter signed event
bytes in clear. The event carries ``sha256(SEAL_DOMAIN + salt + value)``; the
salt and value are kept beside the log in ``secrets`` and travel only where
policy releases them. The signature therefore covers the value (a released
value can be checked against its digest) without the log revealing it, and
random salts stop a digest from being reversed by trying every ID number.

For 同人 matching across cases, a separate keyed tag ``match_tag`` is used:
HMAC under the jurisdiction's match key, equal for equal values, and useless
to anyone without the key; every enrolled node of the jurisdiction holds
that key today, which is why ID-number tags are not yet safe against a
stolen node (see docs/design.md, known gaps).
"""

from __future__ import annotations

import hashlib
import hmac
import os

import attrs

SEAL_DOMAIN = b"xinfang-seal-v1\x00"
MATCH_DOMAIN = b"xinfang-match-v1\x00"


@attrs.frozen
class Secret:
    digest: str
    salt: str = attrs.field(repr=False)
    value: str = attrs.field(repr=False)

    def holds(self) -> bool:
        return digest_of(self.salt, self.value) == self.digest


def digest_of(salt_hex: str, value: str) -> str:
    return hashlib.sha256(SEAL_DOMAIN + bytes.fromhex(salt_hex) + value.encode("utf-8")).hexdigest()


def seal(value: str) -> Secret:
    salt = os.urandom(16).hex()
    return Secret(digest_of(salt, value), salt, value)


def match_tag(match_key_hex: str, value: str) -> str:
    return hmac.new(bytes.fromhex(match_key_hex), MATCH_DOMAIN + value.encode("utf-8"),
                    hashlib.sha256).hexdigest()[:32]
