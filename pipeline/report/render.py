"""A tiny document model rendered two ways: Markdown (images linked) and self-contained HTML
(images inlined as base64 PNG, inline CSS, no external URL), so both always say the same.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Cell:
    text: str
    best: bool = False  # highlighted: best value of its column (or row)
    raw_html: str | None = None  # trusted markup used by HTML instead of `text`
    wrap: bool = False  # long free text (documents): wraps, left-aligned
    alert: bool = False  # a failure: shown in red


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    anchor: str = ""


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: list[tuple[str, bool]]  # (text, is_warning)


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[Cell]]
    caption: str = ""


@dataclass(frozen=True)
class Image:
    path: str  # relative to reports/, e.g. figures/reuters/cost.png
    png: bytes
    caption: str


@dataclass(frozen=True)
class Details:
    summary: str
    blocks: list[Block] = field(default_factory=list)


Block = Heading | Para | Bullets | Table | Image | Details


def markdown(blocks: list[Block]) -> str:
    """GitHub-flavoured Markdown; best cells in bold, collapsibles as <details>."""
    return "\n".join(_md(b) for b in blocks).rstrip() + "\n"


def _md(b: Block) -> str:
    if isinstance(b, Heading):
        return f"{'#' * b.level} {b.text}\n"
    if isinstance(b, Para):
        return f"{b.text}\n"
    if isinstance(b, Bullets):
        return "".join(f"- {'⚠ **' + t + '**' if warn else t}\n" for t, warn in b.items)
    if isinstance(b, Table):

        def cell(c: Cell) -> str:
            text = c.text.replace("|", "\\|").replace("\n", " ")
            return f"**{text}**" if c.best and text else text

        lines = [f"| {' | '.join(b.headers)} |", f"|{'|'.join('---' for _ in b.headers)}|"]
        lines += [f"| {' | '.join(cell(c) for c in row)} |" for row in b.rows]
        return (f"*{b.caption}*\n\n" if b.caption else "") + "\n".join(lines) + "\n"
    if isinstance(b, Image):
        return f"![{b.caption}]({b.path})\n"
    return f"<details><summary>{b.summary}</summary>\n\n" + "\n".join(_md(x) for x in b.blocks) + "\n</details>\n"


def page(title: str, blocks: list[Block]) -> str:
    """A standalone HTML page: inline CSS, images as data URIs, no scripts, no external links."""
    body = "\n".join(_html(b) for b in blocks)
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _html(b: Block) -> str:
    esc = html.escape
    if isinstance(b, Heading):
        anchor = f' id="{esc(b.anchor)}"' if b.anchor else ""
        return f"<h{b.level}{anchor}>{esc(b.text)}</h{b.level}>"
    if isinstance(b, Para):
        return f"<p>{esc(b.text)}</p>"
    if isinstance(b, Bullets):
        items = "".join(f'<li class="{"warn" if w else ""}">{esc(t)}</li>' for t, w in b.items)
        return f"<ul>{items}</ul>"
    if isinstance(b, Table):
        wrapped = {i for row in b.rows for i, c in enumerate(row) if c.wrap}  # text columns: left-aligned headers
        head = "".join(f"<th{' class=text' if i in wrapped else ''}>{esc(h)}</th>" for i, h in enumerate(b.headers))
        body = "".join(
            "<tr>" + "".join(f"<td{_classes(c)}>{c.raw_html or esc(c.text)}</td>" for c in row) + "</tr>"
            for row in b.rows
        )
        caption = f"<caption>{esc(b.caption)}</caption>" if b.caption else ""
        return f'<div class="scroll"><table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    if isinstance(b, Image):
        data = base64.b64encode(b.png).decode("ascii")
        return (
            f'<figure><img src="data:image/png;base64,{data}" alt="{esc(b.caption)}">'
            f"<figcaption>{esc(b.caption)}</figcaption></figure>"
        )
    inner = "\n".join(_html(x) for x in b.blocks)
    return f"<details><summary>{esc(b.summary)}</summary>\n{inner}\n</details>"


def _classes(c: Cell) -> str:
    names = " ".join(n for n, on in (("best", c.best), ("text", c.wrap), ("alert", c.alert)) if on)
    return f' class="{names}"' if names else ""


CSS = """
body{font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK SC","WenQuanYi Micro Hei",sans-serif;
 color:#1f2328;background:#f6f8fa;margin:0}
main{max-width:1200px;margin:0 auto;padding:24px 32px;background:#fff;box-shadow:0 0 8px rgba(0,0,0,.06)}
h1{font-size:26px;border-bottom:2px solid #d0d7de;padding-bottom:6px}
h2{font-size:21px;margin-top:40px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
h3{font-size:16px;margin-top:28px}
.scroll{overflow-x:auto;margin:8px 0 16px}
table{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums}
caption{caption-side:top;text-align:left;color:#57606a;font-style:italic;padding-bottom:4px}
th,td{border:1px solid #d0d7de;padding:4px 9px;text-align:right;white-space:nowrap}
th{background:#f0f3f6;position:sticky;top:0}
td:first-child,th:first-child{text-align:left;font-weight:600}
tbody tr:nth-child(even){background:#fafbfc}
td.best{background:#dafbe1;font-weight:700;color:#116329}
th.text{text-align:left}
td.text{white-space:normal;text-align:left;font-weight:400;min-width:180px;max-width:620px}
td.alert{color:#b42318;font-weight:600}
a{color:#0969da;text-decoration:none}
li.warn{color:#9a3412;font-weight:600}
li.warn::before{content:"⚠ "}
figure{margin:12px 0 20px}
figure img{max-width:100%;height:auto;border:1px solid #eaeef2}
figcaption{color:#57606a;font-size:12px}
details{margin:12px 0;padding:6px 12px;border:1px solid #d0d7de;border-radius:6px}
summary{cursor:pointer;font-weight:600}
mark{background:#ffe58f;padding:0 1px}
"""
