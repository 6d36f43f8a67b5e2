"""HTML for the toolkit's reports: escaping, images (embedded or linked), tables and one page skeleton.

A page is a title and a list of sections, each an HTML string built with the helpers here::

    from keras_morsa import html

    html.write_page(out / "index.html", "Pipeline", [
        html.heading("Ratio study", 2),
        html.paragraph("Best cell: synthetic@0.5."),
        html.table([["cell", "accuracy"], ["real", "81.2"]]),
        html.image("study/accuracy_by_cell_vgg16.png"),                   # linked, relative to the page
        html.image(out / "grids" / "real_wrong.png", embed=True),          # embedded as base64
    ])

Every text and attribute goes through :func:`escape`; only the helpers' own tags are raw. The study and
quality reports describe their content as *blocks* (see :func:`blocks`) so that their Markdown and HTML say
the same thing.
"""

import base64
import html as _stdlib_html
import mimetypes
from pathlib import Path
from urllib.parse import quote

from keras_morsa import io

#: The default page style: readable width, light table rules, images never wider than the page.
STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:auto}td,th{padding:2px 8px;"
    "text-align:right;border-bottom:1px solid #ddd}img{max-width:100%}"
)


def escape(value):
    """``value`` as text safe inside an element or a quoted attribute (``str()`` first, quotes escaped)."""
    return _stdlib_html.escape(str(value))


def heading(text, level=1):
    """``<h1>`` .. ``<h6>`` of ``text``."""
    if int(level) not in range(1, 7):
        raise ValueError(f"heading level={level!r}; accepted: 1 .. 6")
    return f"<h{int(level)}>{escape(text)}</h{int(level)}>"


def paragraph(text):
    return f"<p>{escape(text)}</p>"


def bullets(items, raw=False):
    """An unordered list, one ``<li>`` per item: text (escaped), or with ``raw`` HTML made by these helpers."""
    return "<ul>" + "".join(f"<li>{item if raw else escape(item)}</li>" for item in items) + "</ul>"


def table(rows):
    """A table from rows of cells (any values, shown with ``str``); the first row is the header."""
    rows = list(rows)
    if not rows:
        return "<table></table>"
    header = "".join(f"<th>{escape(cell)}</th>" for cell in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows[1:])
    return f"<table><tr>{header}</tr>{body}</table>"


def href(path):
    """``path`` (relative to the page) as a URL attribute value: percent-quoted (spaces, ``#``), then escaped."""
    return escape(quote(str(path)))


def link(path, label):
    """An ``<a>`` to ``path`` (relative to the page) showing ``label``."""
    return f"<a href='{href(path)}'>{escape(label)}</a>"


def image_source(path, embed=False):
    """The ``src`` of an image: ``path`` as a link (relative to the page), or with ``embed`` the file's bytes
    as a base64 ``data:`` URI, so the page needs no other file."""
    if not embed:
        return href(path)
    mime = mimetypes.guess_type(str(path))[0] or "application/octet-stream"
    return f"data:{mime};base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def image(path, alt=None, embed=False):
    """An ``<img>`` of ``path`` (linked, or embedded with ``embed``); ``alt`` defaults to the path."""
    return f"<img src='{image_source(path, embed)}' alt='{escape(path if alt is None else alt)}'>"


def blocks(report_blocks, embed_from=None):
    """HTML sections of report blocks ``(kind, content)``: kind ``h1``/``h2``/``p`` with text, ``img`` with an
    image path relative to the page, ``table`` with rows of strings (the first the header). With
    ``embed_from`` (the folder the image paths are relative to) every image is embedded."""
    parts = []
    for kind, content in report_blocks:
        if kind in ("h1", "h2"):
            parts.append(heading(content, int(kind[1])))
        elif kind == "p":
            parts.append(paragraph(content))
        elif kind == "img":
            if embed_from is None:
                parts.append(image(content))
            else:
                parts.append(image(Path(embed_from) / content, alt=content, embed=True))
        elif kind == "table":
            parts.append(table(content))
        else:
            raise ValueError(f"report block kind={kind!r}; accepted: h1, h2, p, img, table")
    return parts


def page(title, sections, style=STYLE):
    """A whole HTML document: ``title`` (escaped) in the head, the ``sections`` (HTML strings) in order."""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            f"<html><head><meta charset='utf-8'><title>{escape(title)}</title>",
            f"<style>{style}</style></head><body>",
            *sections,
            "</body></html>",
        ]
    )


def write_page(path, title, sections, style=STYLE):
    """Writes :func:`page` to ``path`` atomically; returns ``path``."""
    with io.atomic_write(path, "w") as f:
        f.write(page(title, sections, style))
    return path
