"""Redirects: editors' own (the `redirect` content type) and the URL history's, checked and
written as Netlify's `_redirects` — 301 for a moved page, 302 for a temporary detour, 410 Gone
for a removed one.

An editor's rule may not start from the address of a page that exists, must lead to a page
(or an https:// address) that exists, and may not lead to an address that is itself redirected:
no chains, and so no loops. Each problem names the redirect entry and the entry it clashes with.
Renamed pages need no rule: every URL a page ever had leads to its current URL in one hop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from headwater.history import History
from headwater.model import Entry, Problem

REDIRECT_TYPE = "redirect"
GONE_PAGE = "/410.html"


@dataclass(frozen=True)
class Rule:
    """One line of `_redirects`."""

    source: str
    target: str
    status: int
    origin: str
    """Who made it: a redirect entry, or the URL history."""


def plan_redirects(
    redirects: Iterable[Entry], owners: Mapping[str, str], history: History
) -> tuple[list[Rule], list[Problem]]:
    """Every rule the site serves, and the problems with editors' rules. `owners` maps each
    live URL to the origin of the entry (or list) whose page it is."""
    problems: list[Problem] = []
    editors: dict[str, tuple[Entry, str, int]] = {}
    for entry in redirects:
        source = str(entry.fields.get("from") or "")
        page = entry.fields.get("toEntry")
        path = entry.fields.get("toPath")
        status = 302 if entry.fields.get("permanent") is False else 301
        if (page is None) == (not path):
            problems.append(
                Problem(
                    entry.origin,
                    "toEntry",
                    "target",
                    "give the redirect exactly one destination: a page (To page) or an "
                    "address (To address)",
                )
            )
            continue
        target = str(page.url) if isinstance(page, Entry) and page.url else str(path or "")
        if isinstance(page, Entry) and not page.url:
            problems.append(
                Problem(entry.origin, "toEntry", "target", f"{page.origin} has no page", page.id)
            )
            continue
        if source in owners:
            problems.append(
                Problem(
                    entry.origin,
                    "from",
                    "redirectOverPage",
                    f"{source} is the address of {owners[source]}, which is published: a "
                    "redirect would hide it. Unpublish that page first, or redirect another "
                    "address",
                    source,
                )
            )
            continue
        editors[source] = (entry, target, status)
    moved = history.moved(set(owners))
    for source, (entry, target, _) in editors.items():
        internal = target.startswith("/")
        if target == source:
            problems.append(
                Problem(entry.origin, "toPath", "loop", "the redirect leads to itself", target)
            )
        elif target in editors:
            other = editors[target][0]
            problems.append(
                Problem(
                    entry.origin,
                    "toPath",
                    "chain",
                    f"leads to {target}, which {other.origin} redirects on to "
                    f"{editors[target][1]}: point this redirect there directly",
                    target,
                )
            )
        elif internal and target in moved:
            problems.append(
                Problem(
                    entry.origin,
                    "toPath",
                    "chain",
                    f"leads to {target}, an old address of the page now at {moved[target]}: "
                    "point this redirect there directly",
                    target,
                )
            )
        elif internal and _path_only(target) not in owners:
            problems.append(
                Problem(
                    entry.origin,
                    "toPath",
                    "target",
                    f"leads to {target}, which no page of the site has",
                    target,
                )
            )
    if problems:
        return [], problems
    rules = [Rule(s, t, status, e.origin) for s, (e, t, status) in sorted(editors.items())]
    rules += [
        Rule(old, new, 301, "URL history") for old, new in moved.items() if old not in editors
    ]
    rules += [
        Rule(url, GONE_PAGE, 410, "URL history")
        for url in history.gone(set(owners))
        if url not in editors
    ]
    return rules, []


def link_resolver(rules: Iterable[Rule]) -> Callable[[str], str]:
    """Where a body's link leads now: a moved page's address, the fragment kept."""
    moved = {r.source: r.target for r in rules if r.status in (301, 302)}

    def resolve(target: str) -> str:
        path, sep, rest = target.partition("#")
        new = moved.get(path) or moved.get(path + "/")
        return new + sep + rest if new else target

    return resolve


def _path_only(target: str) -> str:
    return target.split("#", 1)[0].split("?", 1)[0]


def redirects_file(rules: Iterable[Rule]) -> bytes:
    """Netlify's `_redirects`: one `from to status` line per rule, in the order they apply."""
    lines = [
        "# Made by headwater from the CMS's redirects and the site's URL history: edit those,",
        "# not this file. A moved page answers 301 with its address now, a removed one 410.",
    ]
    lines += [f"{r.source}  {r.target}  {r.status}" for r in rules]
    return ("\n".join(lines) + "\n").encode()


def parse_redirects(text: str) -> dict[str, tuple[str, int]]:
    """`_redirects` as source → (target, status): what the dev server serves from."""
    found: dict[str, tuple[str, int]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and not line.lstrip().startswith("#") and parts[2].isdigit():
            found.setdefault(parts[0], (parts[1], int(parts[2])))
    return found
