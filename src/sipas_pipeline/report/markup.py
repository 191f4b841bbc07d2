"""HTML pieces shared by the page and the scorecards: bilingual labels, figures as published, tables."""

from __future__ import annotations

from html import escape


def num(v: float | None, digits: int = 2) -> str:
    """A figure as published (rounded), or an en dash for no figure."""
    return "–" if v is None else f"{v:.{digits}f}"


def bi(vi: str, en: str) -> str:
    """Vietnamese with the English beside."""
    return f"{escape(vi)} <span class='en'>({escape(en)})</span>"


def table(header: list[str], rows: list[list[str]], cls: str = "") -> str:
    """An HTML table (cells already escaped; numeric-looking cells right-aligned), in a box that scrolls on its own
    when wider than a phone's screen."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td class='n'>{c}</td>" if (c[:1].isdigit() or c[:1] in "-–+") and len(c) < 24
                                    else f"<td>{c}</td>"
                                    for c in r) + "</tr>" for r in rows)
    return f"<div class='scroll'><table class='{cls}'><tr>{head}</tr>{body}</table></div>"
