"""The pipeline's ``index.html``: one page that links every stage's report and shows its pictures.

Every link and image source is relative to the workdir (the page keeps working when the workdir is moved or
copied elsewhere). The HTML comes from :mod:`keras_morsa.html`, as for the other reports.
"""

import dataclasses

from keras_morsa import html

STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:auto;padding:0 1em}"
    "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}"
    "figure{display:inline-block;margin:4px;vertical-align:top}figcaption{font-size:12px;max-width:260px}"
    "img{max-width:260px;max-height:260px;image-rendering:pixelated}"
)


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


def _overview(sections):
    rows = "".join(
        f"<tr><td><a href='#{html.escape(s.name)}'>{html.escape(s.title)}</a></td>"
        f"<td>{html.escape(s.status)}</td><td>{html.link(s.report[1], s.report[0]) if s.report else ''}"
        "</td></tr>"
        for s in sections
    )
    return f"<table><tr><th>stage</th><th>status</th><th>report</th></tr>{rows}</table>"


def _section(s):
    parts = [
        f"<h2 id='{html.escape(s.name)}'>{html.escape(s.title)}</h2>",
        f"<p><b>{html.escape(s.status)}</b></p>",
        *(html.paragraph(line) for line in s.text),
    ]
    if s.table:
        parts.append(html.table(s.table))
    links = ([s.report] if s.report else []) + s.links
    if links:
        parts.append(html.bullets([html.link(path, label) for label, path in links], raw=True))
    parts += [
        f"<figure><a href='{html.href(path)}'>{html.image(path, caption)}</a>"
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for path, caption in s.images
    ]
    return "\n".join(parts)


def write_index(path, title, intro, sections):
    """Writes the page (a table of the stages with status and main report, then one section per stage) to
    ``path`` atomically; returns ``path``."""
    body = [html.heading(title), *(html.paragraph(line) for line in intro), _overview(sections)]
    return html.write_page(path, title, body + [_section(s) for s in sections], style=STYLE)
