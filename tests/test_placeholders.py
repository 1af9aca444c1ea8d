"""No placeholder is ever published: a production build refuses the sample's, naming each
entry and field; other builds publish and warn once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support import REPO, build, headwater

PLACEHOLDER_FIELDS = [
    "content/author/dr-maya-chen.md:4: credentials",
    "content/author/jordan-ellis.md:4: credentials",
    "content/siteSettings.yml:15: contactEmail",
    "content/siteSettings.yml:16: contactPhone",
    "content/siteSettings.yml:17: address",
    "content/siteSettings.yml:21: bookingUrl",
    "content/page/privacy.md:4: summary",
    "content/page/notice-of-privacy-practices.md:4: summary",
]


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """The repository's own project: its sample content still holds placeholders."""
    import shutil

    project = tmp_path / "site"
    for name in ("content", "cms_schema", "templates", "static"):
        shutil.copytree(REPO / name, project / name)
    return project


def test_a_production_build_refuses_every_placeholder_field(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTEXT", "production")
    result = headwater(sample, "build", "--source", "local", "--base-url", "https://clinic.test")
    assert result.exit_code == 1
    for field in PLACEHOLDER_FIELDS:
        assert f"{field}: [placeholder]" in result.output, field
    assert "nothing was published" in result.output
    assert not (sample / "public").exists()


def test_with_the_clinics_own_values_a_production_build_publishes(sample: Path) -> None:
    settings = sample / "content" / "siteSettings.yml"
    text = settings.read_text()
    text = re.sub(r"contactEmail: .*", "contactEmail: hello@threeriverswellness.test", text)
    text = re.sub(r"contactPhone: .*", "contactPhone: (412) 555-2368", text)
    text = re.sub(r"address: .*", "address: 1 River Road, Pittsburgh, PA", text)
    text = re.sub(r"bookingUrl: .*", "bookingUrl: https://threeriverswellness.test/book", text)
    settings.write_text(text)
    note = "*This is a sample profile; replace it with the clinician’s own biography.*"
    for author in (sample / "content" / "author").glob("*.md"):
        author.write_text(author.read_text().replace(" (sample profile)", "").replace(note, ""))
    for slot in ("privacy", "notice-of-privacy-practices"):  # the clinic writes its own
        page = sample / "content" / "page" / f"{slot}.md"
        title = page.read_text().split("\n")[1]
        head = f"{title}\nslug: {slot}\nsummary: The clinic's own summary.\n"
        page.write_text(f"---\n{head}---\n\nThe clinic's own text.\n")
    result = build(sample, "--production")
    assert result.exit_code == 0, result.output
    assert "placeholder" not in result.output


def test_other_builds_publish_and_warn_once(sample: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="headwater"):
        result = build(sample)
    assert result.exit_code == 0
    assert caplog.text.count("placeholders remain") == 1
    assert "content/siteSettings.yml: contactEmail, contactPhone, address, bookingUrl" in (
        caplog.text
    )


def test_a_whole_plan_finds_the_placeholders_of_unchanged_entries_without_reading_them(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The last build's index keeps the placeholders it found; a build that plans the whole
    # site (an article added) looks again only in the entries that changed.
    import headwater.build
    from headwater.placeholders import find_placeholders as find

    assert build(sample).exit_code == 0
    author = sample / "content" / "author" / "jordan-ellis.md"
    author.write_text(author.read_text().replace(" (sample profile)", ""))
    first = next((sample / "content" / "article").glob("*.md"))
    first.with_name("a-new-article.md").write_text(
        first.read_text().replace("slug: ", "slug: a-new-", 1)
    )
    looked: list[str] = []

    def spy(entries, lines=None):  # type: ignore[no-untyped-def]
        entries = list(entries)
        looked.extend(e.origin for e in entries)
        return find(entries, lines)

    monkeypatch.setattr(headwater.build, "find_placeholders", spy)
    result = build(sample, "--production")  # another scope: a whole plan
    assert result.exit_code == 1
    assert sorted(looked) == ["content/article/a-new-article.md", "content/author/jordan-ellis.md"]
    fixed = "content/author/jordan-ellis.md:4: credentials"
    for field in PLACEHOLDER_FIELDS:
        assert (f"{field}: [placeholder]" in result.output) == (field != fixed), field
    # The same list as a build that looks everywhere.
    monkeypatch.setattr(headwater.build, "find_placeholders", find)
    fresh = build(sample, "--production", "--full")
    assert fresh.exit_code == 1
    listed = sorted(line for line in result.output.splitlines() if "[placeholder]" in line)
    assert listed == sorted(ln for ln in fresh.output.splitlines() if "[placeholder]" in ln)
