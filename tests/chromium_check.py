"""Opens an HTML report in headless Chromium and reports which images failed to load and which links are broken.

Why this way: Chromium's own ``--dump-dom`` prints the page's DOM once it has loaded (``--virtual-time-budget``
lets its scripts and image decodes finish first), so a check script in the page can write what the browser
saw (every image's ``naturalWidth``, every link resolved by the browser) into the DOM for Python to read.
That needs nothing but Debian's ``chromium`` package: no DevTools-protocol client (the venv has no WebSocket
package) and no Playwright (a Node driver of its own, and a browser download it would try first). The page
is copied with the script appended to a hidden sibling file, so its relative links resolve exactly as the
original's do.
"""

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlparse

_MARK = "__keras_morsa_check__"
_SCRIPT = f"""
<script>
window.addEventListener("load", () => {{
  const images = Array.from(document.images).map(i => ({{src: i.getAttribute("src"), width: i.naturalWidth}}));
  const links = Array.from(document.links).map(a => {{
    const raw = a.getAttribute("href");
    const anchor = raw.startsWith("#") ? document.getElementById(decodeURIComponent(raw.slice(1))) !== null : null;
    return {{raw: raw, href: a.href, anchor: anchor}};
  }});
  const out = document.createElement("pre");
  out.id = "{_MARK}";
  out.textContent = JSON.stringify({{images: images, links: links}});
  document.body.appendChild(out);
}});
</script>
"""
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)


def chromium():
    """The Chromium executable (``$CHROMIUM``, else ``chromium`` on PATH), or None."""
    return os.environ.get("CHROMIUM") or shutil.which("chromium")


def check_page(page, profile_dir, timeout=120):
    """What the browser made of ``page``.

    Returns:
        ``{"images": [{"src", "width"}], "links": [{"raw", "href", "anchor"}], "broken_images": [src],
        "broken_links": [raw href]}``: an image is broken when its ``naturalWidth`` is 0; a link when it is an
        anchor (``#id``) with no such element, or a file:// URL with nothing at its path, or any other kind of
        URL than file:// and data: (a report is opened from disk, offline).
    """
    page = Path(page).resolve()
    probe = page.with_name(f".{page.stem}.check{os.getpid()}.html")
    probe.write_text(page.read_text(encoding="utf-8") + _SCRIPT, encoding="utf-8")
    try:
        result = subprocess.run(
            [
                chromium(),
                *FLAGS,
                f"--user-data-dir={profile_dir}",
                "--virtual-time-budget=10000",
                "--dump-dom",
                probe.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    finally:
        probe.unlink()
    found = re.search(rf'<pre id="{_MARK}">(.*?)</pre>', result.stdout, re.S)
    if found is None:
        raise AssertionError(
            f"chromium did not run the check on {page} (exit {result.returncode}): {result.stderr[-2000:]}"
        )
    seen = json.loads(html.unescape(found.group(1)))
    seen["broken_images"] = [image["src"] for image in seen["images"] if not image["width"]]
    seen["broken_links"] = [link["raw"] for link in seen["links"] if not _resolves(link)]
    return seen


def _resolves(link):
    if link["anchor"] is not None:
        return link["anchor"]
    url = urlparse(link["href"])
    if url.scheme == "data":
        return True
    return url.scheme == "file" and Path(unquote(url.path)).exists()
