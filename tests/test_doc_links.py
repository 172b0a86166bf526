"""Every relative link of the README, ``docs/`` and the lab notebooks in ``benchmarks/results/``
points at a file that exists and, for ``FILE.md#anchor``, at a heading of that file (GitHub's
anchor rule). Sections move between docs (issue 23: the PCFG results went to a notebook), and a
moved anchor fails silently on GitHub."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_FENCE = re.compile(r"```.*?```", re.S)
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation other than ``-`` and ``_`` dropped,
    spaces to ``-``."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a markdown file's headings (repeats get ``-1``, ``-2``, ...)."""
    seen: dict[str, int] = {}
    out = set()
    for line in _FENCE.sub("", path.read_text()).splitlines():
        m = re.match(r"^#{1,6} (.+)", line)
        if m:
            s = slug(m.group(1))
            out.add(s if s not in seen else f"{s}-{seen[s]}")
            seen[s] = seen.get(s, 0) + 1
    return out


def broken_links(path: Path) -> list[str]:
    """The relative links of ``path`` whose file or anchor is missing (web links are not checked)."""
    bad = []
    for m in _LINK.finditer(_FENCE.sub("", path.read_text())):
        target = m.group(1)
        if re.match(r"^[a-z]+:", target):
            continue
        name, _, frag = target.partition("#")
        dest = (path.parent / name) if name else path
        if not dest.exists():
            bad.append(f"{target} (no such file)")
        elif frag and dest.suffix == ".md" and frag not in anchors(dest):
            bad.append(f"{target} (no such heading)")
    return bad


def test_the_checker_finds_a_moved_anchor_and_a_missing_file(tmp_path):
    (tmp_path / "a.md").write_text("# Title\n\n## What the benchmark measured (seed 0)\n\n## Repeat\n\n## Repeat\n")
    ok = "[x](a.md#what-the-benchmark-measured-seed-0) [y](a.md#repeat-1) [z](#top-level) [w](https://e.org/#q)"
    (tmp_path / "b.md").write_text(f"# Top level\n\n{ok}\n\n```\n[not a link](gone.md)\n```\n")
    assert broken_links(tmp_path / "b.md") == []
    (tmp_path / "c.md").write_text("[x](a.md#the-cpu-regime) [y](gone.md) [z](a.md#repeat-2)\n")
    assert broken_links(tmp_path / "c.md") == [
        "a.md#the-cpu-regime (no such heading)",
        "gone.md (no such file)",
        "a.md#repeat-2 (no such heading)",
    ]


def test_every_doc_link_resolves():
    pages = [
        REPO / "README.md",
        *sorted((REPO / "docs").glob("*.md")),
        *sorted((REPO / "benchmarks/results").glob("*.md")),
    ]
    bad = {str(p.relative_to(REPO)): b for p in pages if (b := broken_links(p))}
    assert not bad, bad
