"""Reports that open with no internet: the scripts, styles and fonts they need, shipped here.

`vendor/` holds files copied unchanged from npm packages (each folder keeps its licence;
versions in `vendor/README.md`). Two users:

- `dvc plots show`/`diff` render through `.dvc/plots.html` (set as `plots.html_template` in
  `.dvc/config`), a page with vega, vega-lite and vega-embed inlined: every plots page is
  one self-contained file. `python -m retrain.assets` rewrites it from `vendor/`; a unit
  test keeps the two equal.
- Great Expectations Data Docs link Bootstrap, jQuery, bootstrap-table, Font Awesome ... from
  CDNs; `localise_tree` copies those files beside the pages and rewrites the links.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

VENDOR = Path(__file__).resolve().parent / "vendor"
TEMPLATE_NAME = "plots.html"  # in .dvc/, named by .dvc/config's plots.html_template
STATIC_DIR = "_static"  # beside a localised site's index.html

# The CDN address of each asset a report may link -> its file under vendor/.
CDN: dict[str, str] = {
    "https://cdn.jsdelivr.net/npm/vega@5": "vega/build/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite/build/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed/build/vega-embed.min.js",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/dist/jquery.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        "bootstrap/dist/css/bootstrap.min.css"
    ),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": (
        "bootstrap/dist/js/bootstrap.min.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": (
        "popper.js/dist/umd/popper.min.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        "fontawesome-free/css/all.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/"
    "bootstrap-datepicker.min.css": "bootstrap-datepicker/dist/css/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/"
    "bootstrap-datepicker.min.js": "bootstrap-datepicker/dist/js/bootstrap-datepicker.min.js",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/"
    "bootstrap-prefers-dark.css": "bootstrap-dark/dist/css/bootstrap-prefers-dark.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        "bootstrap-table/dist/bootstrap-table.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (
        "bootstrap-table/dist/bootstrap-table.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.js": (
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.js"
    ),
    # GE links the filter-control CSS of 1.19.0 beside the 1.19.1 table: the same file.
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.css": (
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.css": (
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.css"
    ),
}
# Files a vendored stylesheet loads by relative path (Font Awesome's fonts).
_COMPANIONS = {
    "fontawesome-free/css/all.min.css": [
        f"fontawesome-free/webfonts/{name}"
        for name in (
            "fa-brands-400.woff2",
            "fa-regular-400.woff2",
            "fa-solid-900.woff2",
            "fa-v4compatibility.woff2",
        )
    ]
}
_EXTERNAL = re.compile(
    r"""<(?:script[^>]*\ssrc|link[^>]*\shref)\s*=\s*["'](https?://[^"']+)["']""", re.I
)

PLOTS_PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>DVC Plot</title>
    <!-- vega, vega-lite and vega-embed inlined (src/retrain/assets/vendor, BSD-3-Clause):
         this page draws with no network. Written by `python -m retrain.assets`. -->
%s
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def plots_template() -> str:
    """The `dvc plots` page template, the three Vega scripts inlined (no `{scripts}` slot, so
    DVC's CDN tags are never added)."""
    scripts = []
    for name in ("vega", "vega-lite", "vega-embed"):
        code = (VENDOR / CDN[f"https://cdn.jsdelivr.net/npm/{name}@{_MAJOR[name]}"]).read_text()
        if "</script" in code or "{plot_divs}" in code or "{refresh_tag}" in code:
            raise ValueError(f"{name}'s build cannot be inlined as is")
        scripts.append(f'    <script type="text/javascript">\n{code}\n    </script>')
    # SVG, not canvas: sharp when zoomed, and the marks are in the DOM (the browser test).
    scripts.append(
        '    <script type="text/javascript">\n'
        "    (function () {\n"
        "        var embed = window.vegaEmbed;\n"
        "        window.vegaEmbed = function (el, spec, opt) {\n"
        '            return embed(el, spec, Object.assign({renderer: "svg"}, opt || {}));\n'
        "        };\n"
        "    })();\n"
        "    </script>"
    )
    return PLOTS_PAGE.replace("%s", "\n".join(scripts))


_MAJOR = {"vega": "5", "vega-lite": "5", "vega-embed": "6"}


def write_plots_template(repo: Path) -> Path:
    path = repo / ".dvc" / TEMPLATE_NAME
    path.write_text(plots_template())
    return path


def external_links(html: str) -> list[str]:
    """Every http(s) address a page loads a script or stylesheet from (not `<a>` links)."""
    return _EXTERNAL.findall(html)


def localise_tree(root: Path) -> list[Path]:
    """Make every HTML page under `root` load its CDN assets from `root/_static/vendor`.

    Returns:
        The pages rewritten.

    Raises:
        ValueError: a page loads an asset from the network that is not vendored here.
    """
    static = root / STATIC_DIR / "vendor"
    needed: set[str] = set()
    changed = []
    for page in sorted(root.rglob("*.html")):
        html = page.read_text(encoding="utf-8")
        unknown = [u for u in external_links(html) if u not in CDN]
        if unknown:
            raise ValueError(f"{page}: loads {unknown[0]}, which is not vendored (offline)")
        used = [u for u in CDN if u in html]
        if not used:
            continue
        rel = Path(os.path.relpath(static, page.parent)).as_posix()
        for url in sorted(used, key=len, reverse=True):  # the longest first: no prefix clash
            # A quoted attribute value only: the address inside text or a longer URL stays.
            local = f"{rel}/{CDN[url]}".replace("\\", "\\\\")
            html = re.sub(
                r"""(["'])""" + re.escape(url) + r"""(["'])""", rf"\g<1>{local}\g<2>", html
            )
            needed.add(CDN[url])
        page.write_text(html, encoding="utf-8")
        changed.append(page)
    for rel_file in sorted(needed):
        for item in [rel_file, *_COMPANIONS.get(rel_file, [])]:
            dest = static / item
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(VENDOR / item, dest)
    return changed


def main(argv: list[str] | None = None) -> int:
    """`python -m retrain.assets [repo]`: rewrite .dvc/plots.html from vendor/."""
    args = sys.argv[1:] if argv is None else argv
    path = write_plots_template(Path(args[0] if args else "."))
    print(f"wrote {path}")
    return 0
