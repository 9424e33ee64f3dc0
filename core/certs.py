"""Certificates: a node's keys bound to an area prefix and a level.

A certificate is canonical bytes signed by its issuer (the parent node); a
root signs its own. Its scope is the area prefix: a parent may only certify a
prefix inside its own.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import attrs

from . import codec, keys
from .errors import InvalidInput

CERT_DOMAIN = b"xinfang-cert-v1\x00"


@attrs.frozen
class Certificate:
    raw: bytes = attrs.field(repr=False)
    signature: bytes = attrs.field(repr=False)
    subject: str
    encryption: str
    area: str
    level: str
    name: str
    issuer: str

    @property
    def self_signed(self) -> bool:
        return self.subject == self.issuer

    def signature_valid(self) -> bool:
        return keys.verify(self.issuer, self.signature, CERT_DOMAIN + self.raw)

    @classmethod
    def issue(cls, issuer: keys.NodeKeys, *, subject: str, encryption: str, area: str,
              level: str, name: str) -> "Certificate":
        content = {"v": 1, "subject": subject, "encryption": encryption, "area": area,
                   "level": level, "name": name, "issuer": issuer.author}
        raw = codec.encode(content)
        return cls._from(raw, issuer.sign(CERT_DOMAIN + raw), content)

    @classmethod
    def parse(cls, raw: bytes, signature: bytes) -> "Certificate":
        content = codec.decode(raw)
        return cls._from(raw, signature, content)

    @classmethod
    def _from(cls, raw: bytes, signature: bytes, content: dict[str, Any]) -> "Certificate":
        try:
            return cls(raw, signature, content["subject"], content["encryption"], content["area"],
                       content["level"], content["name"], content["issuer"])
        except (KeyError, TypeError):
            raise InvalidInput("certificate is missing fields") from None

    def to_json(self) -> str:
        return json.dumps({"certificate": base64.b64encode(self.raw).decode(),
                           "signature": self.signature.hex()})

    @classmethod
    def from_json(cls, text: str) -> "Certificate":
        try:
            data = json.loads(text)
            return cls.parse(base64.b64decode(data["certificate"]), bytes.fromhex(data["signature"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"not a certificate file ({exc})") from None
