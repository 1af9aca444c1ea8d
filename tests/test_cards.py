"""Share cards: deterministic PNGs, named by what they show, drawn only when missing."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image
from support import build, make_project

from headwater import cards


def png_chunks(data: bytes) -> list[str]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    kinds, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kinds.append(data[at + 4 : at + 8].decode("ascii"))
        at += 12 + length
    return kinds


def built_cards(project: Path) -> dict[str, bytes]:
    folder = project / "public" / "cards"
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


def test_a_card_is_a_1200_by_630_palette_png_without_metadata() -> None:
    data = cards.draw_card("What Causes PTSD?", "Three Rivers Wellness")
    assert data == cards.draw_card("What Causes PTSD?", "Three Rivers Wellness")
    kinds = png_chunks(data)
    assert kinds[:2] == ["IHDR", "PLTE"] and kinds[-1] == "IEND"
    assert set(kinds[2:-1]) == {"IDAT"}, kinds
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (1200, 630)
        # The title is drawn: the card is not one flat colour.
        assert len(image.getcolors() or []) > 10


def png_checked(data: bytes) -> bytes:
    """The rows a PNG's IDAT chunks hold, after checking every chunk's CRC and the zlib
    stream's own checksum (zlib.decompress checks it)."""
    at, idat = 8, b""
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        idat += body if kind == b"IDAT" else b""
        at += 12 + length
    return zlib.decompress(idat)


@pytest.mark.parametrize("title", ["What Causes PTSD?", "Ketamine " * 60, "gjpqy", ""])
def test_a_card_is_the_base_card_with_the_title_drawn_in_place(title: str) -> None:
    # Cards are compressed from pieces (the base card's rows once, each title's rows anew):
    # the stream must be whole and the picture the base card with the title pasted on it.
    data = cards.draw_card(title, "Three Rivers Wellness")
    rows = png_checked(data)
    assert len(rows) == 630 * (1 + 1200)
    assert {rows[i * 1201] for i in range(630)} == {0}  # each row's filter byte
    base = cards._base("Three Rivers Wellness")
    with Image.open(io.BytesIO(data)) as image:
        assert image.mode == "P" and image.getpalette() == cards.PALETTE
        pixels = image.tobytes()
    assert pixels == b"".join(rows[i * 1201 + 1 : (i + 1) * 1201] for i in range(630))
    # Outside the title's box it is the base card.
    paired = enumerate(zip(pixels, base.tobytes(), strict=True))
    changed = {i // 1200 for i, (a, b) in paired if a != b}
    assert all(80 <= row < 80 + 4 * 86 for row in changed), (min(changed), max(changed))
    assert bool(changed) == bool(title)


def test_a_title_too_long_for_four_lines_is_cut_short_not_drawn_off_the_card() -> None:
    long = cards.draw_card("Ketamine " * 60, "Three Rivers Wellness")
    short = cards.draw_card("Ketamine", "Three Rivers Wellness")
    with Image.open(io.BytesIO(long)) as image:
        assert image.size == (1200, 630)
        # Nothing below the rule but the clinic's name: the last 150 rows match a short title's.
        bottom = image.crop((0, 480, 1200, 630)).tobytes()
    with Image.open(io.BytesIO(short)) as image:
        assert bottom == image.crop((0, 480, 1200, 630)).tobytes()


def test_two_projects_draw_byte_identical_cards(tmp_path: Path) -> None:
    one, two = make_project(tmp_path / "one"), make_project(tmp_path / "two")
    assert build(one).exit_code == 0
    assert build(two).exit_code == 0
    first, second = built_cards(one), built_cards(two)
    # One per article, page (not the home page), topic and author, and the site's own.
    assert len(first) == 5
    assert first == second
    for data in first.values():
        assert "tIME" not in png_chunks(data) and "tEXt" not in png_chunks(data)


def test_only_a_new_title_is_drawn_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "site")
    assert build(project).exit_code == 0
    before = built_cards(project)
    drawn: list[str] = []
    draw = cards.draw_card

    def spy(title: str, site_name: str) -> bytes:
        drawn.append(title)
        return draw(title, site_name)

    monkeypatch.setattr(cards, "draw_card", spy)
    article = project / "content" / "article" / "first-article.md"
    text = article.read_text(encoding="utf-8")
    assert "title: The First Article" in text
    article.write_text(text.replace("title: The First Article", "title: A Retitled Article"))
    result = build(project)
    assert result.exit_code == 0, result.output
    assert drawn == ["A Retitled Article"]
    after = built_cards(project)
    # The new card replaces the old one in the article's folder; the others stay as they were.
    assert len(set(after) - set(before)) == 1 and len(set(before) - set(after)) == 1
    assert {k: v for k, v in after.items() if k in before} == {
        k: v for k, v in before.items() if k in after
    }
    page = (project / "public" / "blog" / "first-article" / "index.html").read_text()
    (new,) = set(after) - set(before)
    assert f'content="https://example.test/cards/{new}"' in page
    with Image.open(project / "public" / "cards" / new) as image:
        assert image.size == (1200, 630)


def test_each_page_of_a_long_topic_keeps_its_card_through_an_incremental_build(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path / "site")
    for n in range(12):  # the topic's list runs to a second page, with a card of its own
        (project / "content" / "article" / f"extra-{n}.md").write_text(
            f"---\ntitle: Extra {n}\nsummary: Extra article {n}.\nauthor: dr-test\n"
            f"publishDate: 2025-01-{n + 1:02d}\ntopics: [testing]\n---\n\nText {n}.\n"
        )
    assert build(project).exit_code == 0
    first = built_cards(project)
    assert any(name.startswith("topics/testing/page/2/") for name in first)
    extra = project / "content" / "article" / "extra-3.md"
    extra.write_text(extra.read_text() + "\nAn edited paragraph.\n")
    assert build(project).exit_code == 0
    assert built_cards(project) == first  # a body edit changes no card, and loses none
