"""Share cards: the 1200×630 PNG a page shows when shared, drawn once per title with Pillow."""

from __future__ import annotations

import functools
import hashlib
import os
import struct
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from headwater.model import Asset, Entry
from headwater.parallel import run_sharded
from headwater.site import Route, Site

WIDTH, HEIGHT = 1200, 630
IMAGES_API_HOSTS = ("https://images.ctfassets.net/", "https://images.eu.ctfassets.net/")
"""Where Contentful's Images API serves assets: it can crop any of them to a card."""

# The theme's colours (static/css/site.css): the crisis banner's teal, its text, its focus amber.
BACKGROUND = (0x11, 0x3C, 0x42)
TEXT = (0xF1, 0xF7, 0xF6)
ACCENT = (0xFF, 0xD0, 0x8A)
MARGIN = 80
TITLE_SIZES = (72, 64, 56, 48)
TITLE_LINES = 4
NAME_SIZE = 36
DRAWING = "3"
"""Bumped whenever draw_card draws differently, so every card is drawn again."""
PARALLEL_FROM = 64


def card_digest(title: str, site_name: str) -> str:
    """What a card's bytes are made of: its texts, the drawing and the Pillow drawing it."""
    parts = (DRAWING, _pillow(), title, site_name)
    return hashlib.blake2b("\0".join(parts).encode(), digest_size=10).hexdigest()


@functools.cache
def _pillow() -> str:
    import PIL  # the package alone (1 ms), not importlib.metadata's scan of every install (40 ms)

    return PIL.__version__


def card_path(title: str, site_name: str, owner: str = "") -> str:
    """The card's output path: in its entry's folder (the site's own: in cards/ itself), named
    by its digest, so an unchanged card is never redrawn and a replaced one is found."""
    folder = f"cards/{owner}/" if owner else "cards/"
    return f"{folder}{card_digest(title, site_name)}.png"


def card_owner(route: Route) -> str:
    """The folder of the card a route shows: the page's own URL path ('blog/x', and
    'topics/t/page/2' for a topic's second page, whose title differs); '' for the site's card.
    One card a folder, so an incremental build knows exactly which card a new one replaces."""
    own = route.recipe.own if route.recipe is not None else None
    if route.kind not in CARD_KINDS or own is None or not own.url:
        return ""
    return route.url.strip("/")


def superseded_cards(live: Iterable[str], cards: Iterable[str]) -> set[str]:
    """The cards in live that these cards replace: others in the same folder."""
    folders = {path.rsplit("/", 1)[0]: path for path in cards}
    return {
        path
        for path in live
        if path.startswith("cards/")
        and path.endswith(".png")
        and folders.get(path.rsplit("/", 1)[0], path) != path
    }


def share_image(site: Site, route: Route) -> Asset:
    """The image a page shows when shared: an article's Contentful hero image cropped by the
    Images API, else the page's own card."""
    article = route.context.get("article")
    hero = article.heroImage if isinstance(article, Entry) else None
    if isinstance(hero, Asset) and _croppable(hero):
        return Asset(
            id=hero.id,
            title=hero.title,
            alt=hero.alt,
            mime="image/jpeg",
            source=hero.source,
            url=f"{hero.url}?fm=jpg&w={WIDTH}&h={HEIGHT}&fit=fill",
            width=WIDTH,
            height=HEIGHT,
        )
    title = card_title(site, route)
    path = card_path(title, site.name, card_owner(route))
    return Asset(
        id=path,
        title=title,
        alt=f"{title} — {site.name}",
        mime="image/png",
        source=path,
        url="/" + path,
        width=WIDTH,
        height=HEIGHT,
    )


CARD_KINDS = ("article", "page", "topic", "author")
"""The pages with a card of their own; the rest (home, the blog's lists, 404) share the site's."""


def card_title(site: Site, route: Route) -> str:
    if route.kind in CARD_KINDS and route.heading:
        return route.heading
    return site.tagline or site.name


def _croppable(asset: Asset) -> bool:
    return asset.url.startswith(IMAGES_API_HOSTS) and asset.mime in ("image/jpeg", "image/png")


def plan_cards(site: Site, routes: Iterable[Route], cache_dir: Path) -> dict[str, Path]:
    """Each card the routes show (output path → file in cache_dir), drawing those missing."""
    titles: dict[str, str] = {}
    for route in routes:
        if route.is_html:
            image = share_image(site, route)
            if image.mime == "image/png":
                titles.setdefault(image.source, image.title)
    # Kept by digest alone: a card moves folders with its entry's slug, not redrawn.
    files = {path: cache_dir / path.rsplit("/", 1)[-1] for path in titles}
    todo = {files[p]: t for p, t in sorted(titles.items()) if not files[p].is_file()}
    missing = sorted(todo.items())
    if missing:
        cache_dir.mkdir(parents=True, exist_ok=True)
        name = site.name

        def work(shard: Sequence[tuple[Path, str]]) -> list[bool]:
            for file, title in shard:
                _save(file, draw_card(title, name))
            return [True] * len(shard)

        run_sharded(work, missing, workers=None if len(missing) >= PARALLEL_FROM else 0)
    return files


def _save(path: Path, data: bytes) -> None:
    # Written aside and renamed, so a card another build reads is always whole.
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_bytes(data)
    temporary.replace(path)


def draw_card(title: str, site_name: str) -> bytes:
    """The card's PNG: the title, wrapped and sized to fit, above the clinic's name. The same
    texts give the same bytes (no time or other metadata is written)."""
    from PIL import Image, ImageDraw

    width = WIDTH - 2 * MARGIN
    lines: list[str] = []
    font: Any = None
    for size in TITLE_SIZES:
        font = _font(size)
        lines = _wrap(title, font, width)
        if len(lines) <= TITLE_LINES:
            break
    if len(lines) > TITLE_LINES:
        lines = lines[:TITLE_LINES]
        lines[-1] = _shorten(lines[-1] + " …", font, width)
    step = int(font.size * 1.2)
    # Only the rows the title covers are drawn and compressed per card (a descender may reach
    # half a line below the last): a coverage mask mapped onto the text ramp of the palette,
    # pasted into those rows of the site's base card, between its compressed rows above and
    # below, which every card shares.
    top, bottom = MARGIN, MARGIN + min(len(lines) * step + step // 2, TITLE_LINES * step)
    mask = Image.new("L", (width, bottom - top), 0)
    draw = ImageDraw.Draw(mask)
    for number, line in enumerate(lines):
        draw.text((0, number * step), line, font=font, fill=255)
    rows = _base(site_name).crop((0, top, WIDTH, bottom))
    rows.paste(mask.point(TEXT_RAMP), (MARGIN, 0))
    return _png(site_name, top, bottom, rows.tobytes())


def _png(site_name: str, top: int, bottom: int, pixels: bytes) -> bytes:
    """The card's PNG, with these palette pixels in rows top to bottom and the base card's
    elsewhere. PNG compresses all rows as one zlib stream; its deflate data may be joined from
    pieces, each flushed to a byte boundary, so the base card's rows are compressed once."""
    head, head_rows = _base_rows(site_name, 0, top, last=False)
    tail, tail_rows = _base_rows(site_name, bottom, HEIGHT, last=True)
    raw = _filtered(pixels)
    squeeze = zlib.compressobj(COMPRESSION, zlib.DEFLATED, -15)
    middle = squeeze.compress(raw) + squeeze.flush(zlib.Z_FULL_FLUSH)
    checksum = _adler32_combine(zlib.adler32(raw, head_rows[0]), tail_rows[0], tail_rows[1])
    data = b"\x78\x5e" + head + middle + tail + struct.pack(">I", checksum)
    header = struct.pack(">IIBBBBB", WIDTH, HEIGHT, 8, 3, 0, 0, 0)  # 8-bit palette, no interlace
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"PLTE", bytes(PALETTE))
        + _chunk(b"IDAT", data)
        + _chunk(b"IEND", b"")
    )


COMPRESSION = 3
"""zlib's level for a card's rows (the header 0x785e says so: a fast level)."""


@functools.lru_cache(maxsize=64)
def _base_rows(
    site_name: str, start: int, stop: int, *, last: bool
) -> tuple[bytes, tuple[int, int]]:
    """Rows start to stop of the base card, compressed (ending the stream when last), and
    their filtered bytes' Adler-32 checksum and length."""
    raw = _filtered(_base(site_name).crop((0, start, WIDTH, stop)).tobytes())
    squeeze = zlib.compressobj(COMPRESSION, zlib.DEFLATED, -15)
    data = squeeze.compress(raw) + squeeze.flush(zlib.Z_FINISH if last else zlib.Z_FULL_FLUSH)
    return data, (zlib.adler32(raw), len(raw))


def _filtered(pixels: bytes) -> bytes:
    """PNG rows of palette pixels, each with its filter byte (0: none, best for palettes)."""
    return b"".join(b"\0" + pixels[i : i + WIDTH] for i in range(0, len(pixels), WIDTH))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _adler32_combine(first: int, second: int, second_length: int) -> int:
    """The Adler-32 of two byte strings joined, from each one's (zlib's adler32_combine)."""
    base = 65521
    rem = second_length % base
    low = first & 0xFFFF
    high = (rem * low) % base
    low += (second & 0xFFFF) + base - 1
    high += ((first >> 16) & 0xFFFF) + ((second >> 16) & 0xFFFF) + base - rem
    return (low % base) | ((high % base) << 16)


@functools.lru_cache(maxsize=8)
def _font(size: int) -> Any:
    """Pillow's own scalable font (Aileron, bundled since 10.1): the same on every machine."""
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


@functools.lru_cache(maxsize=4)
def _base(site_name: str) -> Any:
    """The card without its title: background, accent stripe, rule and the clinic's name, as a
    palette image of two ramps (background to text, background to accent), a third of the
    bytes of an RGB image to compress."""
    from PIL import Image, ImageDraw

    accent = Image.new("L", (WIDTH, HEIGHT), 0)
    draw = ImageDraw.Draw(accent)
    draw.rectangle((0, 0, 23, HEIGHT), fill=255)
    draw.line((MARGIN, HEIGHT - 150, WIDTH - MARGIN, HEIGHT - 150), fill=RULE_SHADE, width=3)
    name_font = _font(NAME_SIZE)
    name = _shorten(site_name, name_font, WIDTH - 2 * MARGIN)
    draw.text((MARGIN, HEIGHT - 120), name, font=name_font, fill=255)
    image = accent.point(ACCENT_RAMP)
    image = Image.frombytes("P", (WIDTH, HEIGHT), image.tobytes())
    image.putpalette(PALETTE)
    return image


def _ramp(start: tuple[int, int, int], end: tuple[int, int, int]) -> list[int]:
    pairs = list(zip(start, end, strict=True))
    return [round(a + (b - a) * i / 127) for i in range(128) for a, b in pairs]


PALETTE = _ramp(BACKGROUND, TEXT) + _ramp(BACKGROUND, ACCENT)
RULE_SHADE = 64
TEXT_RAMP = [v // 2 for v in range(256)]
ACCENT_RAMP = [0] + [128 + v // 2 for v in range(1, 256)]


def _wrap(text: str, font: Any, width: int) -> list[str]:
    """Lines of whole words no wider than width (a word wider than that is cut to fit)."""
    lines: list[str] = []
    for word in " ".join(text.split()).split(" "):
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(_shorten(word, font, width))
    return lines or [""]


def _shorten(text: str, font: Any, width: int) -> str:
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"
