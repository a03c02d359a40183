"""Sphinx configuration for the metatensor documentation.

The API reference is generated with autodoc from the installed ``metatensor``
package (``nox -s docs`` installs it from this checkout).
"""

import inspect
import os
import sys

import metatensor


# local extensions
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "_ext"))


project = "metatensor"
author = "metatensor developers"
copyright = "metatensor developers"
version = metatensor.__version__
release = metatensor.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    # formulas rendered to MathML at build time: the pages work offline
    "mathml",
]

source_suffix = {".rst": "restructuredtext"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# Python API documentation
autoclass_content = "class"
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
add_module_names = False

html_theme = "furo"
html_title = f"metatensor {release}"
pygments_style = "sphinx"
pygments_dark_style = "monokai"


def _defining_module(app, modname, attribute):
    """The classes show their public module (``metatensor.TensorMap``), their
    methods keep the module defining them: point the source links there."""
    value = getattr(sys.modules.get(modname), attribute.split(".")[0], None)
    if inspect.isclass(value):
        for member in vars(value).values():
            if inspect.isfunction(member) and member.__module__ != modname:
                return member.__module__
    return None


def setup(app):
    app.connect("viewcode-follow-imported", _defining_module)
