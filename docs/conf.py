"""Sphinx configuration for the jobtree documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html`` (warnings are errors).
"""

from __future__ import annotations

import os
import sys
from importlib import metadata
from typing import Any

from sphinx.util import logging

logger = logging.getLogger(__name__)

# Document the jobtree of this checkout, installed or not.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

project = "jobtree"
author = "jobtree developers"
copyright = "2026, jobtree developers"
try:
    release = metadata.version("jobtree-farm")
except metadata.PackageNotFoundError:
    release = "unreleased"
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# Markdown: anchors for headings down to level 3, so pages can link to [text](page.md#heading).
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]

# API reference: follow jobtree.__all__ and the order of the source.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True


def _checkApiComplete(app: Any, env: Any) -> None:
    """Warn (an error under -W) when a name in jobtree.__all__ is missing from docs/api.md."""
    import jobtree

    documented = env.get_domain("py").objects
    for name in jobtree.__all__:
        if f"jobtree.{name}" not in documented:
            logger.warning("jobtree.%s is in jobtree.__all__ but not documented in api.md", name)


def setup(app: Any) -> None:
    app.connect("env-check-consistency", _checkApiComplete)


html_theme = "furo"
html_title = f"jobtree {release}"
