"""The documentation: a short README, links that lead somewhere, and no pointer outside the
repository. Plain file checks: no database, no server."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
README_LIMIT = 10_000
FORBIDDEN = ("DESIGN.md", "../shared")

FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.MULTILINE)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:, ...
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)


def documents() -> list[Path]:
    return [README, *sorted((ROOT / "docs").rglob("*.md")), ROOT / "bench" / "README.md"]


def prose(text: str) -> str:
    """The text without code blocks and code spans, where brackets are not links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def link_targets(text: str) -> list[str]:
    text = prose(text)
    return INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text)


def anchors(path: Path) -> set[str]:
    """The anchors a Markdown renderer gives the file's headings (GitHub's way)."""
    found: set[str] = set()
    for title in HEADING.findall(FENCE.sub("", path.read_text())):
        slug = re.sub(r"[^\w\- ]", "", title.replace("`", "").strip().lower()).replace(" ", "-")
        candidate, n = slug, 1
        while candidate in found:
            candidate, n = f"{slug}-{n}", n + 1
        found.add(candidate)
    return found


def broken_links(document: Path) -> list[str]:
    broken = []
    for target in link_targets(document.read_text()):
        if EXTERNAL.match(target):
            continue
        location, _, fragment = target.partition("#")
        location = location.split("?", 1)[0]
        resolved = (document.parent / location).resolve() if location else document
        if not resolved.is_relative_to(ROOT):
            broken.append(f"{target} (outside the repository)")
        elif not resolved.exists():
            broken.append(f"{target} (no such file)")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            broken.append(f"{target} (no such heading)")
    return broken


def test_the_documents_exist():
    for document in documents():
        assert document.is_file(), document


def test_readme_is_short():
    length = len(README.read_text())
    assert length < README_LIMIT, f"README.md has {length:,} characters"


def test_every_relative_link_resolves():
    broken = {
        str(document.relative_to(ROOT)): links
        for document in documents()
        if (links := broken_links(document))
    }
    assert not broken, broken


def test_no_document_points_outside_the_repository():
    for document in documents():
        text = document.read_text()
        for name in FORBIDDEN:
            assert name not in text, f"{document.relative_to(ROOT)} mentions {name}"


def test_the_link_checker_sees_links_and_skips_code():
    text = (
        "See [guide](docs/guide.md#roles) and ![shot](a.png).\n\n"
        "```\n[x](nowhere.md)\n```\n`[y](z)`"
    )
    assert link_targets(text) == ["docs/guide.md#roles", "a.png"]
