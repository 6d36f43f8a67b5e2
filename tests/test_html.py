"""The shared HTML helpers: escaping, tables, linked and embedded images, report blocks, the page skeleton."""

import base64

import pytest

from keras_morsa import html


def test_page_escapes_text_and_keeps_sections_in_order(tmp_path):
    sections = [html.heading("a <b> & c", 2), html.paragraph('it\'s "x"'), html.bullets(["1 < 2", "ok"])]
    path = html.write_page(tmp_path / "sub" / "index.html", "T & <T>", sections)
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</body></html>")
    assert "<title>T &amp; &lt;T&gt;</title>" in page and html.STYLE in page
    assert "<h2>a &lt;b&gt; &amp; c</h2>" in page and "<p>it&#x27;s &quot;x&quot;</p>" in page
    assert "<ul><li>1 &lt; 2</li><li>ok</li></ul>" in page
    assert page.index("<h2>") < page.index("<p>") < page.index("<ul>")
    assert html.page("x", [], style="b{}").count("<style>b{}</style>") == 1


def test_table_has_a_header_row_and_shows_any_value():
    assert html.table([["cell", "n"], ["real", 3], ["<x>", None]]) == (
        "<table><tr><th>cell</th><th>n</th></tr><tr><td>real</td><td>3</td></tr>"
        "<tr><td>&lt;x&gt;</td><td>None</td></tr></table>"
    )
    assert html.table([]) == "<table></table>"


def test_images_are_linked_or_embedded(tmp_path):
    png = tmp_path / "grids" / "a.png"
    png.parent.mkdir()
    png.write_bytes(b"\x89PNG not really")
    assert html.image("grids/a.png") == "<img src='grids/a.png' alt='grids/a.png'>"
    embedded = html.image(png, alt="a", embed=True)
    encoded = base64.b64encode(png.read_bytes()).decode("ascii")
    assert embedded == f"<img src='data:image/png;base64,{encoded}' alt='a'>"


def test_blocks_render_each_kind_and_refuse_an_unknown_one(tmp_path):
    (tmp_path / "plot.png").write_bytes(b"png")
    blocks = [("h1", "Study"), ("p", "text"), ("table", [["h"], ["v"]]), ("img", "plot.png")]
    linked = html.blocks(blocks)
    assert linked == [
        "<h1>Study</h1>",
        "<p>text</p>",
        "<table><tr><th>h</th></tr><tr><td>v</td></tr></table>",
        "<img src='plot.png' alt='plot.png'>",
    ]
    embedded = html.blocks(blocks, embed_from=tmp_path)
    assert embedded[:3] == linked[:3] and embedded[3].startswith("<img src='data:image/png;base64,")
    assert embedded[3].endswith("alt='plot.png'>")
    with pytest.raises(ValueError, match="kind='video'; accepted: h1, h2, p, img, table"):
        html.blocks([("video", "x")])
