"""The documentation pages (docs/*.md) as tests read them: the SQL a page shows, to be run."""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def section(page: str, heading: str) -> str:
    """The text of `docs/<page>.md` under the level-2 heading `heading`, up to the next level-2 heading."""
    text = (DOCS / f"{page}.md").read_text(encoding="utf-8")
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def sql_statements(page: str, heading: str) -> list[str]:
    """The statements of every ```sql block in that section (comment-only pieces left out)."""
    blocks = section(page, heading).split("```sql")[1:]
    return [s.strip() for b in blocks for s in b.split("```", 1)[0].split(";")
            if any(line.strip() and not line.strip().startswith("--") for line in s.splitlines())]
