"""Canonical JSON, content hashes and the hub's deterministic ids: one implementation of each.

Every document, payload and hash the hub stores goes through :func:`canonical_json`
(orjson, keys sorted, UTF-8, no escaping of non-ASCII), so "Zoë" is the same bytes
and the same :func:`content_hash` wherever it is written. Ids are UUID version 5
in the hub's namespace, derived from what they name, so a batch rolled back and
run again makes exactly the ids of a single run.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import orjson

ID_NAMESPACE = uuid.UUID("6f1c2a52-3c1e-4f0e-9a57-2f4d8e1b7c10")


def canonical_json(value: Any) -> bytes:
    """Canonical JSON: sorted keys, UTF-8, so equal content hashes equally."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str)


def content_hash(data: bytes | str) -> str:
    """SHA-256 of canonical JSON bytes (text is hashed as its UTF-8 bytes), hex."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def uuid5(name: str) -> str:
    """``str(uuid.uuid5(ID_NAMESPACE, name))`` without building UUID objects (twice per record): the
    version's digit is 5 and the variant's top bits 10, set on the digest's hex digits directly."""
    digest = _NAMESPACE_SHA1.copy()  # the namespace's bytes hashed once: a copy costs less than a new hash
    digest.update(name.encode())
    h = digest.hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


_NAMESPACE_SHA1 = hashlib.sha1(ID_NAMESPACE.bytes, usedforsecurity=False)
_VARIANT = {f"{n:x}": f"{n & 0x3 | 0x8:x}" for n in range(16)}  # a hex digit with its top two bits set to 10


def entity_id_for(source: str, stream: str, source_id: str) -> str:
    """The hub's id for the entity a source record first created (stable across runs)."""
    return uuid5(f"{source}/{stream}/{source_id}")


def event_id_for(entity_id: str, version: int, kind: str) -> str:
    """A change event's id: the same change always gets the same id."""
    return uuid5(f"event/{entity_id}/{version}/{kind}")
