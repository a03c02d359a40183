"""Render the math of the documentation at build time, as MathML.

Sphinx's default math renderer (MathJax) loads a script from a CDN when a page
is opened, so the formulas show as raw LaTeX without network access. This
extension converts the LaTeX of ``:math:`` roles and ``.. math::`` directives to
MathML with ``latex2mathml`` (pure Python) while building; browsers display
MathML natively, so the built pages need no script and no network.
"""

import html

from docutils import nodes
from latex2mathml.converter import convert
from sphinx.util import logging


_LOGGER = logging.getLogger(__name__)


def _mathml(latex: str, display: str) -> str:
    try:
        return convert(latex, display=display)
    except Exception as e:  # an unsupported command
        raise ValueError(f"can not convert '{latex}' to MathML: {e}") from e


def visit_math(self, node):
    """Write an inline formula as MathML.

    :param node: the ``math`` node
    """
    latex = node.astext()
    try:
        rendered = _mathml(latex, "inline")
    except ValueError as e:
        _LOGGER.warning(str(e), location=node)
        rendered = html.escape(latex)
    self.body.append(f'<span class="math notranslate">{rendered}</span>')
    raise nodes.SkipNode


def visit_displaymath(self, node):
    """Write a displayed formula (or several, separated by blank lines) as
    MathML.

    :param node: the ``math_block`` node
    """
    latex = node.astext()
    self.body.append(self.starttag(node, "div", CLASS="math notranslate"))
    if node.get("number"):
        self.body.append(f'<span class="eqno">({node["number"]})</span>')
    # equations separated by blank lines are rendered one by one
    for part in (p for p in latex.split("\n\n") if p.strip()):
        try:
            rendered = _mathml(part, "block")
        except ValueError as e:
            _LOGGER.warning(str(e), location=node)
            rendered = "<pre>" + html.escape(part) + "</pre>"
        self.body.append(rendered)
    self.body.append("</div>\n")
    raise nodes.SkipNode


def setup(app):
    """Register the renderer and make it the one used for HTML.

    :param app: the Sphinx application
    """
    app.add_html_math_renderer(
        "mathml",
        inline_renderers=(visit_math, None),
        block_renderers=(visit_displaymath, None),
    )
    app.config.html_math_renderer = "mathml"
    return {"parallel_read_safe": True, "parallel_write_safe": True}
