"""Sphinx configuration of the HTML book; `make book` builds it.

The Sphinx sources are generated: tools/build_book.py merges each chapter's
executed notebooks (build/notebooks/<framework>/<chapter>.ipynb) into one
tabbed notebook under build/book/, and sphinx-build reads them from there with
this folder as its configuration folder (`-c book`). MyST-NB only renders those
notebooks: it executes nothing, the outputs are the ones `make notebooks` made.
"""
import sys
from pathlib import Path

# tools.book_sphinx (the framework tab sets) lives in the repository's tools package.
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

project = "GANs in three frameworks"
author = "the book's authors"
copyright = "the book's authors"

extensions = [
    "myst_nb",
    "sphinx_design",
    # MathJax 3 served from _static/mathjax: the build fetches nothing, and the
    # page loads no script from a CDN.
    "sphinx-mathjax-offline",
    "tools.book_sphinx",
]

# --- notebooks and MyST -------------------------------------------------------
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["amsmath", "colon_fence", "dollarmath"]
# Section numbers for {numref}, as in d2l ("Section 2").
numfig = True

# --- HTML -----------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = project
html_static_path = ["_static"]
html_css_files = ["book.css"]
html_favicon = "_static/favicon.svg"
# The merged notebooks are build artefacts mixing three frameworks; each page
# offers the real per-framework notebooks for download instead.
html_copy_source = False
html_show_sourcelink = False
# pydata-sphinx-theme (under sphinx-book-theme) logs a console error on every
# page when no default colour mode is given.
html_context = {"default_mode": "auto"}
html_theme_options = {
    "use_download_button": False,
    "use_fullscreen_button": False,
    "show_toc_level": 2,
}
