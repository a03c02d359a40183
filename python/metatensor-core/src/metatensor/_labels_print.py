"""Text and HTML representations of :py:class:`Labels`."""

from typing import List, Optional, Sequence

import numpy as np


_HTML_MAX_ROWS = 20


def format_line(cells: List[str], widths: List[int]) -> str:
    """Center each cell in a column of the given width; the last cell gets no
    trailing spaces.

    :param cells: text of each cell
    :param widths: width of each column
    """
    parts = []
    last = len(cells) - 1
    for j, (cell, width) in enumerate(zip(cells, widths)):
        padding = width - len(cell)
        before = padding // 2
        if j == last:
            parts.append(" " * before + cell)
        else:
            parts.append(" " * before + cell + " " * (padding - before))
    return "".join(parts)


def format_labels(
    names: Sequence[str],
    values: Optional[np.ndarray],
    max_entries: int,
    indent: int = 0,
) -> str:
    """Format Labels as a table, the implementation of ``Labels.print``.

    :param names: names of the dimensions
    :param values: CPU numpy values, or ``None`` for Labels without data (torch
        ``meta`` device)
    :param max_entries: how many entries to print; a negative value prints all
    :param indent: number of spaces at the start of each entry line (the first
        line, with the names, is not indented)
    """
    if values is None:
        widths = [len(name) + 2 for name in names]
        header = format_line(list(names), widths)
        return header + "\n" + " " * indent + "<values on the 'meta' device>"

    count = values.shape[0]
    truncated = False
    before = values
    after = values[:0]
    if 0 <= max_entries < count:
        max_entries = max(max_entries, 2)
        if max_entries < count:
            n_after = max_entries // 2
            n_before = max_entries - n_after
            before = values[:n_before]
            after = values[count - n_after :]
            truncated = True

    widths = []
    for j, name in enumerate(names):
        width = len(name)
        for part in (before, after):
            if part.shape[0] != 0:
                # the longest string is the one of the min or the max value
                column = part[:, j]
                width = max(
                    width, len(str(int(column.min()))), len(str(int(column.max())))
                )
        widths.append(width + 2)

    prefix = " " * indent
    lines = [format_line(list(names), widths)]
    for row in before.tolist():
        lines.append(prefix + format_line([str(v) for v in row], widths))
    if truncated:
        half = sum(widths) // 2
        if half > 3:
            half -= 3
        lines.append(prefix + " " * (half + 1) + "...")
    for row in after.tolist():
        lines.append(prefix + format_line([str(v) for v in row], widths))
    return "\n".join(lines)


def labels_html(names: Sequence[str], values: Optional[np.ndarray]) -> str:
    """HTML table for Labels, the implementation of ``Labels._repr_html_``. Long
    Labels are truncated to their first and last entries.

    :param names: names of the dimensions
    :param values: CPU numpy values, or ``None`` for Labels without data
    """
    html = ["<table>", "<thead><tr>"]
    html.extend(f"<th>{name}</th>" for name in names)
    html.append("</tr></thead>")
    html.append("<tbody>")

    if values is None:
        rows_before: list = []
        rows_after: list = []
        truncated = True
    else:
        count = values.shape[0]
        truncated = count > _HTML_MAX_ROWS
        if truncated:
            half = _HTML_MAX_ROWS // 2
            rows_before = values[:half].tolist()
            rows_after = values[count - half :].tolist()
        else:
            rows_before = values.tolist()
            rows_after = []

    for row in rows_before:
        html.append("<tr>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>")
    if truncated:
        html.append("<tr>" + "<td>...</td>" * len(names) + "</tr>")
    for row in rows_after:
        html.append("<tr>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>")
    html.append("</tbody>")
    html.append("</table>")
    return "".join(html)
