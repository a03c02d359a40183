"""Check that the built HTML documentation is self-contained: no page loads a
script, a stylesheet, a font or an image from another site (the pages must
work without network access), and no formula is left as raw LaTeX for a
script to render.

Usage: ``python docs/check_offline.py docs/build/html``
"""

import pathlib
import re
import sys


# resources loaded by the browser when the page is opened (links the reader
# clicks on are fine)
_EXTERNAL = re.compile(
    r"<(script|img|iframe|source)\b[^>]*\bsrc\s*=\s*[\"']?(https?:)?//"
    r"|<link\b[^>]*\bhref\s*=\s*[\"']?(https?:)?//[^>]*>"
    r"|@import\s+(url\()?[\"']?(https?:)?//"
    r"|url\(\s*[\"']?(https?:)?//",
    re.IGNORECASE,
)
_RAW_MATH = re.compile(r"\\\(|\\\[|\$\$")


def check(root: pathlib.Path) -> list:
    """The problems found in the HTML and CSS files under ``root``.

    :param root: the folder of the built documentation
    """
    problems = []
    pages = sorted(root.rglob("*.html"))
    if not pages:
        return [f"no HTML page in {root}"]
    for path in pages + sorted(root.rglob("*.css")):
        text = path.read_text(encoding="utf8", errors="replace")
        for match in _EXTERNAL.finditer(text):
            tag = match.group(0)
            if tag.startswith("<link") and re.search(
                r"rel\s*=\s*[\"']?(canonical|alternate|author|license)", tag
            ):
                continue
            problems.append(f"{path.relative_to(root)}: external resource: {tag}")
        if path.suffix == ".html":
            body = text.split("<body", 1)[-1]
            # remove code blocks, where backslashes are legitimate
            body = re.sub(r"<pre\b.*?</pre>", "", body, flags=re.DOTALL)
            if _RAW_MATH.search(body):
                problems.append(f"{path.relative_to(root)}: raw LaTeX math")
    return problems


def main() -> int:
    """Check the folder given on the command line, return the exit status."""
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "docs/build/html")
    problems = check(root)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problems: the documentation is not self-contained")
        return 1
    print(f"{root}: no external resources, math rendered at build time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
