"""The pipeline's ``index.html``: one page that links every stage's report and shows its pictures.

Every link and image source is relative to the workdir (the page keeps working when the workdir is moved or
copied elsewhere). All of the page's HTML is made here, in :func:`render_index`.
"""

import dataclasses
import html
from urllib.parse import quote

from keras_morsa import io


@dataclasses.dataclass
class Section:
    """One stage on the page.

    Attributes:
        name: the stage's name (the section's anchor, ``#<name>``).
        title: its heading.
        status: one line, e.g. ``"done 2026-01-02T03:04:05+00:00 (12 s)"`` or ``"not run yet"``.
        text: paragraphs (plain text).
        report: ``(label, path relative to the workdir)`` of the stage's main report (in the overview), or None.
        links: ``(label, path relative to the workdir)``.
        images: ``(path relative to the workdir, caption)``, shown as thumbnails linking to the full picture.
        table: rows of strings, the first the header; or empty.
    """

    name: str
    title: str
    status: str
    report: tuple = None
    text: list = dataclasses.field(default_factory=list)
    links: list = dataclasses.field(default_factory=list)
    images: list = dataclasses.field(default_factory=list)
    table: list = dataclasses.field(default_factory=list)


def _href(path):
    return html.escape(quote(str(path)))


def _table(rows):
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows[1:])
    return f"<table><tr>{head}</tr>{body}</table>"


def render_index(title, intro, sections):
    """The page's HTML: a table of the stages (status, main report) and one section per stage."""
    esc = html.escape
    rows = []
    for s in sections:
        main = f"<a href='{_href(s.report[1])}'>{esc(s.report[0])}</a>" if s.report else ""
        rows.append(f"<tr><td><a href='#{esc(s.name)}'>{esc(s.title)}</a></td><td>{esc(s.status)}</td>"
                    f"<td>{main}</td></tr>")
    parts = [
        "<!DOCTYPE html>",
        f"<html><head><meta charset='utf-8'><title>{esc(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto;padding:0 1em}"
        "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}"
        "figure{display:inline-block;margin:4px;vertical-align:top}figcaption{font-size:12px;max-width:260px}"
        "img{max-width:260px;max-height:260px;image-rendering:pixelated}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        *(f"<p>{esc(line)}</p>" for line in intro),
        "<table><tr><th>stage</th><th>status</th><th>report</th></tr>" + "".join(rows) + "</table>",
    ]
    for s in sections:
        parts.append(f"<h2 id='{esc(s.name)}'>{esc(s.title)}</h2>")
        parts.append(f"<p><b>{esc(s.status)}</b></p>")
        parts += [f"<p>{esc(line)}</p>" for line in s.text]
        if s.table:
            parts.append(_table(s.table))
        links = ([s.report] if s.report else []) + s.links
        if links:
            parts.append("<ul>" + "".join(f"<li><a href='{_href(path)}'>{esc(label)}</a></li>"
                                          for label, path in links) + "</ul>")
        for path, caption in s.images:
            parts.append(f"<figure><a href='{_href(path)}'><img src='{_href(path)}' alt='{esc(caption)}'></a>"
                         f"<figcaption>{esc(caption)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_index(path, title, intro, sections):
    """Writes :func:`render_index`'s page to ``path`` atomically; returns ``path``."""
    with io.atomic_write(path, "w") as f:
        f.write(render_index(title, intro, sections))
    return path
