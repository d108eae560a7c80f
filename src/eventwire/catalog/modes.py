"""The seed's three payload patterns, and the ``auto`` policy between them.

==========  ===============================  =================================
mode        ``ADDED``                        ``UPDATED``
==========  ===============================  =================================
full        the full DTO                     the full DTO
partial     the full DTO                     a merge patch of the DTO (a full
                                             DTO is a valid patch too)
auto        the full DTO                     the full DTO while the encoded
                                             event is at most 10 KiB, a merge
                                             patch above (the seed: "Use full
                                             DTO for <10KB payloads, partial
                                             for larger resources")
reference   ``null``: the client fetches     ``null``: the client fetches
==========  ===============================  =================================

In ``partial`` and ``auto`` modes clients always apply an UPDATED payload to
their copy as an RFC 7396 merge patch; a full DTO applied that way is the
full DTO. 100 KiB stays the hard maximum of any payload.
"""

from __future__ import annotations

import enum
from typing import Any

from eventwire.catalog import patch as merge_patch
from eventwire.catalog.schema import dump_json

__all__ = ["FULL_DTO_LIMIT", "PAYLOAD_MAX", "PayloadMode", "update_payload"]

FULL_DTO_LIMIT = 10 * 1024
"""Largest encoded event for which ``auto`` sends the full DTO (the seed's 10KB)."""

PAYLOAD_MAX = 100 * 1024
"""The seed's hard maximum: "<10KB ideal, <100KB maximum"."""


class PayloadMode(enum.StrEnum):
    """How a resource's ADDED and UPDATED events carry the entity."""

    FULL = "full"
    PARTIAL = "partial"
    AUTO = "auto"
    REFERENCE = "reference"


def _json(value: Any) -> Any:
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


def update_payload(
    before: Any,
    after: Any,
    mode: PayloadMode | str = PayloadMode.AUTO,
    *,
    overhead: int = 0,
    limit: int = FULL_DTO_LIMIT,
) -> Any:
    """The UPDATED payload for an entity that went from ``before`` to ``after``.

    ``before`` and ``after`` are JSON objects or Pydantic models. ``overhead``
    is the size of the rest of the encoded event (topic, ids, timestamp), so
    that ``auto`` compares the whole event with ``limit``, as the seed does.

    - ``full``: ``after``;
    - ``partial``: the merge patch from ``before`` to ``after``;
    - ``auto``: ``after`` if the event stays within ``limit`` bytes, else the patch;
    - ``reference``: ``None``.
    """
    mode = PayloadMode(mode)
    if mode is PayloadMode.REFERENCE:
        return None
    full = _json(after)
    if mode is PayloadMode.FULL:
        return full
    if mode is PayloadMode.AUTO and len(dump_json(full)) + overhead <= limit:
        return full
    return merge_patch.diff(_json(before), full)
