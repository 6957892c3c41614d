"""The README and docs/: every relative link and anchor resolves, and the diagram is shown."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: [text](target) and ![alt](target), outside code spans
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes."""
    text = FENCE.sub("", page.read_text())
    found = set()
    for heading in re.findall(r"^#+\s+(.+)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def _links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text())
    text = re.sub(r"`[^`\n]*`", "", text)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    broken = []
    for target in _links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_the_readme_shows_the_architecture_diagram_drawn_from_its_source() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "](docs/architecture.svg)" in readme
    svg = (ROOT / "docs" / "architecture.svg").read_text()
    source = (ROOT / "docs" / "architecture.dot").read_text()
    # Graphviz names the SVG's graph after the source's digraph: the image comes from this file
    name = re.search(r"^digraph\s+(\w+)", source, re.M)
    assert name is not None
    assert f"<title>{name.group(1)}</title>" in svg
    # every node label of the source is in the image (an edit to the source needs `make docs`)
    for label in re.findall(r'label="([A-Za-z][\w ]+?)\\n', source):
        assert label in svg, f"{label!r} is in architecture.dot but not in the rendered SVG"
