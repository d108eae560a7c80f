"""RFC 7396 JSON merge patches: compute one from two JSON values, and apply one.

The seed's "Partial DTO (changed fields only)" is a merge patch: the client
merges it into its copy. RFC 7396 section 2 defines the whole algorithm::

    define MergePatch(Target, Patch):
      if Patch is an Object:
        if Target is not an Object:
          Target = {} # Ignore the contents and set it to an empty Object
        for each Name/Value pair in Patch:
          if Value is null:
            if Name exists in Target:
              remove the Name/Value pair from Target
          else:
            Target[Name] = MergePatch(Target[Name], Value)
        return Target
      else:
        return Patch

A merge patch cannot set a member to ``null`` (``null`` means "remove"), nor
change part of an array (arrays are replaced whole). :func:`diff` therefore
drops members whose value is ``null`` in ``after``, which is how a DTO's
unset optional fields look once patched.

No well-kept Python library does both halves with types and without
mutating its inputs, so these are the few lines the RFC asks for.
"""

from __future__ import annotations

from typing import Any

__all__ = ["apply", "diff", "strip_nulls"]

JSON = Any


def _same(a: JSON, b: JSON) -> bool:
    # JSON equality: Python's 1 == True and 1 == 1.0 are different JSON values.
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def strip_nulls(value: JSON) -> JSON:
    """``value`` without the object members whose value is ``null``, at every depth."""
    if isinstance(value, dict):
        return {k: strip_nulls(v) for k, v in value.items() if v is not None}
    return value


def diff(before: JSON, after: JSON) -> JSON:
    """The merge patch that turns ``before`` into ``after`` (nulls in ``after`` removed).

    ``strip_nulls(apply(before, diff(before, after))) == strip_nulls(after)``,
    and without the ``strip_nulls`` when neither value holds a ``null``
    member. An empty object means nothing changed.
    """
    if not isinstance(before, dict) or not isinstance(after, dict):
        return strip_nulls(after)
    patch: dict[str, JSON] = {}
    for name in before:
        if after.get(name) is None and before[name] is not None:
            patch[name] = None
    for name, value in after.items():
        if value is None:
            continue
        old = before.get(name)
        if isinstance(value, dict) and isinstance(old, dict):
            nested = diff(old, value)
            if nested != {}:
                patch[name] = nested
        elif old is None or not _same(old, value):
            patch[name] = strip_nulls(value)
    return patch


def apply(target: JSON, patch: JSON) -> JSON:
    """``target`` with ``patch`` merged in (RFC 7396 section 2); neither is modified."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = apply(result.get(name), value)
    return result
