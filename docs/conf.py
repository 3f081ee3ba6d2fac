"""Sphinx configuration of jaxcost's documentation: ``make docs`` builds it into docs/_build/html.

Sphinx with MyST markdown pages, as jax, flax and optax build theirs: the pages stay plain markdown that reads
well where it is stored, while the command line and API reference are generated from the parser and the
docstrings (``_ext/jaxcost_docs.py``), so they are never written twice.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "jaxcost"
author = "the jaxcost authors"
copyright = "the jaxcost authors"

extensions = ["myst_parser", "sphinx.ext.autodoc", "jaxcost_docs"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]

# links such as [the peaks](measured.md#peaks) resolve to headings up to three levels deep
myst_heading_anchors = 3
# a ```python block is highlighted as Python, whatever it holds
highlight_language = "none"

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True}

html_theme = "sphinx_book_theme"
html_title = "jaxcost"
html_static_path = ["_static"]
html_theme_options = {"show_toc_level": 2}
html_show_sourcelink = False
