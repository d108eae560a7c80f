"""Heuristics about names: event-type casing, opaque codes, past tense, nested topics.

The seed's anti-patterns, each with its fix:

- ``event: "update"`` (inconsistent casing) → ``UPDATED``;
- ``event: "E001"`` (unclear) → ``GIFT_PURCHASED`` (descriptive);
- ``gift-list:123:gift:456`` (too complex) → ``gift-list:123`` with
  ``entity_id: "gift-456"``.

An event states a fact that happened, so its last word is a past-tense
verb: ``USER_JOINED``, ``IMPORT_COMPLETED``, ``USER_LEFT``.
"""

from __future__ import annotations

import functools
import re

__all__ = ["casing_fix", "is_opaque", "is_past_tense", "nested_entity"]

_WORD = re.compile(r"[A-Za-z]+|[0-9]+")
_VOWELS = set("AEIOUY")

# Irregular past tenses (and past participles) common in event names.
_IRREGULAR_WORDS = """
    BEGAN BEGUN BENT BOUGHT BROKE BROKEN BROUGHT BUILT CAUGHT CHOSE CHOSEN CUT DEALT DONE
    DREW DRAWN FED FELT FOUGHT FOUND FREED FROZE FROZEN GAVE GIVEN GONE GOT GOTTEN GREW
    GROWN HELD HID HIDDEN HUNG HURT KEPT KNEW KNOWN LAID LED LEFT LENT LET LOST MADE MET
    PAID PUT QUIT RAN READ RESET RODE ROSE RUN SAID SAT SAW SEEN SENT SET SHOWN SHUT SLEPT
    SOLD SPENT SPLIT SPOKE SPOKEN SPREAD STOLE STOLEN STOOD STRUCK SWEPT SWUNG TAUGHT TOLD
    TOOK TAKEN THOUGHT THREW THROWN UNDERSTOOD UPSET WOKE WOKEN WON WORE WORN WOUND WROTE
    WRITTEN AGREED GUARANTEED DECREED OVERRODE OVERRIDDEN REBUILT RERAN REWROTE UNDID UNDONE
    WITHDREW WITHDRAWN
"""
_IRREGULAR = frozenset(_IRREGULAR_WORDS.split())
_NOT_PAST_ED = frozenset({"BED", "FEED", "NEED", "SEED", "SPEED", "RED", "SHED", "EMBED", "BREED"})

_CASING_FIXES = {
    "create": "ADDED", "created": "ADDED", "add": "ADDED", "added": "ADDED", "new": "ADDED",
    "insert": "ADDED", "inserted": "ADDED", "update": "UPDATED", "updated": "UPDATED",
    "change": "UPDATED", "changed": "UPDATED", "modify": "UPDATED", "modified": "UPDATED",
    "edit": "UPDATED", "edited": "UPDATED", "delete": "DELETED", "deleted": "DELETED",
    "remove": "DELETED", "removed": "DELETED", "destroy": "DELETED", "destroyed": "DELETED",
    "status": "STATUS_CHANGED", "status_change": "STATUS_CHANGED",
    "statuschanged": "STATUS_CHANGED", "status_changed": "STATUS_CHANGED",
}  # fmt: skip


def casing_fix(name: str) -> str:
    """The UPPER_SNAKE_CASE name to use instead of ``name`` (``update`` → ``UPDATED``)."""
    known = _CASING_FIXES.get(re.sub(r"[\s.-]+", "_", name.strip()).lower())
    if known is not None:
        return known
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.strip())
    return re.sub(r"[^A-Za-z0-9]+", "_", spaced).strip("_").upper() or "EVENT_HAPPENED"


@functools.lru_cache(maxsize=4096)
def is_opaque(name: str) -> bool:
    """Whether ``name`` is a code rather than words.

    Opaque: no word of three or more letters with a vowel (``E001``,
    ``X_1``), or a number with no word of four or more letters beside it
    (``EVT_42``). ``GIFT_PURCHASED`` and ``STEP_2_COMPLETED`` are not.
    """
    words = _WORD.findall(name.upper())
    letters = [w for w in words if w.isalpha()]
    if not any(len(w) >= 3 and _VOWELS & set(w) for w in letters):
        return True
    has_number = any(w.isdigit() for w in words)
    return has_number and not any(len(w) >= 4 for w in letters)


@functools.lru_cache(maxsize=4096)
def is_past_tense(name: str) -> bool:
    """Whether the last word of ``name`` is a past-tense verb (``USER_JOINED``, ``USER_LEFT``)."""
    words = _WORD.findall(name.upper())
    if not words:
        return False
    last = words[-1]
    if last in _IRREGULAR:
        return True
    return last.endswith("ED") and len(last) > 3 and last not in _NOT_PAST_ED


def _singular(resource: str) -> str:
    for suffix in ("-list", "-set", "-group", "-collection"):
        if resource.endswith(suffix):
            return resource.removesuffix(suffix)
    return resource.removesuffix("s")


def nested_entity(
    segments: list[str], entity_id: str | None, resources: frozenset[str] = frozenset()
) -> tuple[str, str] | None:
    """The ``(kind, id)`` an entity nested in a topic, or None.

    ``gift-list:123:gift:456`` nests the gift ``456`` inside the list's topic
    (the seed's anti-pattern). A later ``kind:id`` pair counts as an entity
    when ``kind`` is a declared resource type, the singular of the topic's
    own resource (``gift`` in ``gift-list``), or when ``entity_id`` is that
    pair (``gift-456``). Hierarchies the seed shows as good, such as
    ``org:acme:team:dev`` or ``room:lobby:messages``, pass.
    """
    if len(segments) < 4:
        return None
    own = _singular(segments[0])
    for at in range(2, len(segments) - 1):
        kind, ident = segments[at], segments[at + 1]
        joined = {f"{kind}-{ident}", f"{kind}_{ident}", f"{kind}:{ident}"}
        if kind in resources or kind == own or (entity_id is not None and entity_id in joined):
            return kind, ident
    return None
