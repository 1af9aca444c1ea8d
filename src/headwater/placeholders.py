"""The production guard: no placeholder is ever published.

The sample content marks what the clinic must replace — contact details on `example.*`
domains, fictional 555-01xx telephone numbers, "placeholder" and "sample profile" notes. A
production build (Netlify's `CONTEXT=production`, or `headwater build --production`) refuses
to publish while any remains, naming each entry and field; every other build publishes and
prints one warning that lists them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from headwater.model import Asset, Entry, Problem

EXAMPLE_DOMAIN = re.compile(r"\b[\w.-]*example\.(?:com|org|net|edu)\b|\b[\w-]+\.example\b", re.I)
FICTIONAL_PHONE = re.compile(r"\(?\b555\)?[\s.-]*01\d[\s.-]*\d{4}\b|\b555[\s.-]?01\d\d\b")
PATTERNS = (
    (EXAMPLE_DOMAIN, "an example.* address"),
    (FICTIONAL_PHONE, "a fictional 555-01xx number"),
    (re.compile(r"\bplaceholder\b", re.I), "the word “placeholder”"),
    (re.compile(r"\bsample profile\b", re.I), "“sample profile”"),
)


def find_placeholders(
    entries: Iterable[Entry], lines: Mapping[str, Mapping[str, int]] | None = None
) -> list[Problem]:
    """One problem per field of an entry that still holds a placeholder (at the field's line
    in `lines`, by entry id and field, when known)."""
    problems = []
    for entry in entries:
        where = (lines or {}).get(entry.id, {})
        for name, value in entry.fields.items():
            for text in _texts(value):
                found = [label for pattern, label in PATTERNS if pattern.search(text)]
                if found:
                    problems.append(
                        Problem(
                            entry.origin,
                            name,
                            "placeholder",
                            f"still holds {' and '.join(found)}: replace it with the clinic's "
                            "own before publishing to production",
                            text,
                            where.get(name),
                        )
                    )
                    break
    return problems


def _texts(value: Any) -> Iterator[str]:
    """The text a field shows (strings, lists of them; not the entries it links to)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            if not isinstance(item, Entry | Asset):
                yield from _texts(item)


def summary(problems: list[Problem]) -> str:
    """One line for builds that publish anyway: which entries and fields."""
    fields: dict[str, list[str]] = {}
    for problem in problems:
        fields.setdefault(problem.origin, []).append(problem.field)
    listed = "; ".join(f"{origin}: {', '.join(names)}" for origin, names in fields.items())
    return (
        f"{len(problems)} placeholder{'s' if len(problems) != 1 else ''} remain "
        f"(a production build will refuse to publish them): {listed}"
    )
