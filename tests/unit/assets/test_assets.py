"""Offline reports: the committed DVC plots template is what vendor/ builds, and CDN links
in a report are rewritten to vendored files copied beside it."""

from __future__ import annotations

import configparser

import pytest

from retrain.assets import CDN, TEMPLATE_NAME, VENDOR, localise_tree, plots_template
from tests.conftest import REPO


def test_the_committed_plots_template_is_built_from_vendor():
    assert (REPO / ".dvc" / TEMPLATE_NAME).read_text() == plots_template()
    config = configparser.ConfigParser()
    config.read(REPO / ".dvc" / "config")
    assert config["plots"]["html_template"] == TEMPLATE_NAME
    assert "{plot_divs}" in plots_template() and "{scripts}" not in plots_template()
    assert "cdn.jsdelivr" not in plots_template().split("<body>")[0].split("-->", 1)[1]


def test_every_vendored_asset_exists_with_its_licence():
    for rel in CDN.values():
        assert (VENDOR / rel).is_file(), rel
        package = VENDOR / rel.split("/")[0]
        assert any(package.glob("LICENSE*")), package


def test_localise_tree_rewrites_cdn_links_relative_to_each_page(tmp_path):
    nested = tmp_path / "validations" / "suite"
    nested.mkdir(parents=True)
    cdn = "https://code.jquery.com/jquery-3.7.1.min.js"
    css = "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css"
    page = f'<html><head><script src="{cdn}"></script><link rel="stylesheet" href="{css}">'
    (tmp_path / "index.html").write_text(page + '<a href="https://example.org">x</a></head>')
    (nested / "run.html").write_text(page + "</head>")
    assert len(localise_tree(tmp_path)) == 2
    assert (
        'src="_static/vendor/jquery/dist/jquery.min.js"' in (tmp_path / "index.html").read_text()
    )
    assert "https://example.org" in (tmp_path / "index.html").read_text()  # a link, not a load
    text = (nested / "run.html").read_text()
    assert 'src="../../_static/vendor/jquery/dist/jquery.min.js"' in text and cdn not in text
    static = tmp_path / "_static" / "vendor"
    assert (static / "jquery" / "dist" / "jquery.min.js").is_file()
    assert (static / "fontawesome-free" / "webfonts" / "fa-solid-900.woff2").is_file()


def test_a_page_loading_an_unknown_cdn_asset_is_an_error(tmp_path):
    (tmp_path / "index.html").write_text('<script src="https://unpkg.com/other@1"></script>')
    with pytest.raises(ValueError, match="not vendored"):
        localise_tree(tmp_path)
