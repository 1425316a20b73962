"""The one output layer of `python -m shared`: every command builds a JSON value and `render` prints it the way
`-o` asks, after `--query` (JMESPath, as `az` does) has picked from it.

Formats (the `az` ones): json (indented), jsonc (json with ANSI colours), tsv (one line per row, tab-separated
values, no header), table (aligned columns with a header, generated from the JSON), none (nothing).
A command may give a table view: a function from its JSON value to the rows a table shows (as `az`'s table
transformers do); with `--query` the table shows what the query picked instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

FORMATS = ("json", "jsonc", "table", "tsv", "none")

TableView = Callable[[Any], Any]


class QueryError(ValueError):
    """A --query that is not valid JMESPath (a usage error)."""


def query(value: Any, expression: str | None) -> Any:
    if not expression:
        return value
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        return jmespath.search(expression, value)
    except JMESPathError as exc:
        raise QueryError(f"--query {expression!r} is not valid JMESPath: {str(exc).splitlines()[0]}") from None


def render(value: Any, output: str, expression: str | None = None, table_view: TableView | None = None,
           columns: Sequence[str] = ()) -> str:
    """The text to print for `value` in `output` format, after `expression`; "" for none. `columns` are the
    table view's (printed even when it has no rows)."""
    if output not in FORMATS:
        raise QueryError(f"-o must be one of: {', '.join(FORMATS)}")
    if output == "table" and table_view is not None and not expression:
        return table(table_view(value), headers=columns)
    value = query(value, expression)
    if output == "none":
        return ""
    if output == "json":
        return json.dumps(value, indent=2, default=str) + "\n"
    if output == "jsonc":
        return colour_json(json.dumps(value, indent=2, default=str)) + "\n"
    if output == "tsv":
        return "".join("\t".join(_tsv_cell(cell) for cell in row) + "\n" for row in _tsv_rows(value))
    return table(value)


# ---- table ----------------------------------------------------------------------------------------------------


def main_list(body: Any) -> Any:
    """The table view of a report: its first list of objects (doctor's checks, a review's accounts), else itself."""
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
                return value
    return body



def table(value: Any, headers: Sequence[str] = ()) -> str:
    """Aligned columns with a header: a list of objects is one row each (columns: `headers`, else the scalar fields
    in first-seen order), one object is one row, a list of scalars is one column, a scalar is itself. With
    `headers`, an empty list still prints the header."""
    rows = _records(value)
    if rows is None:
        return "" if value is None else f"{_cell(value)}\n"
    columns: list[str] = list(headers)
    if not columns:
        for row in rows:
            columns += [key for key, cell in row.items() if key not in columns and _is_scalar(cell)]
    if not columns:
        return ""
    cells = [[_cell(row.get(key)) for key in columns] for row in rows]
    titles = columns
    widths = [max([len(title), *(len(line[i]) for line in cells)]) for i, title in enumerate(titles)]
    out = ["  ".join(t.ljust(w) for t, w in zip(titles, widths, strict=True)).rstrip(),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in cells]
    return "\n".join(out) + "\n"


def _records(value: Any) -> list[dict[str, Any]] | None:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [item if isinstance(item, dict) else {"value": item} for item in value]
    return None


def _is_scalar(cell: Any) -> bool:
    return cell is None or isinstance(cell, (str, int, float, bool))


def _cell(cell: Any) -> str:
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "true" if cell else "false"
    text = cell if isinstance(cell, str) else json.dumps(cell, default=str) if not _is_scalar(cell) else str(cell)
    return " ".join(text.split())  # one line per row, whatever a value holds


# ---- tsv ------------------------------------------------------------------------------------------------------


def _tsv_rows(value: Any) -> list[list[Any]]:
    """`az -o tsv`: a list is a line per item, an object's scalar values are the fields of its line."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    rows = []
    for item in items:
        if isinstance(item, dict):
            rows.append([cell for cell in item.values() if _is_scalar(cell)])
        elif isinstance(item, list):
            rows.append([cell for cell in item if _is_scalar(cell)])
        else:
            rows.append([item])
    return rows


def _tsv_cell(cell: Any) -> str:
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "True" if cell else "False"  # as az prints them
    # One line per row for whatever splits lines (str.splitlines: \n, \r, \x1e, \u2028, ...), no tab in a field.
    return " ".join(str(cell).splitlines()).replace("\t", " ")


# ---- jsonc ----------------------------------------------------------------------------------------------------

_TOKEN = re.compile(r'("(?:[^"\\]|\\.)*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)')
_KEY, _STRING, _LITERAL, _NUMBER, _RESET = "\x1b[94m", "\x1b[32m", "\x1b[95m", "\x1b[33m", "\x1b[0m"


def colour_json(text: str) -> str:
    def paint(match: re.Match[str]) -> str:
        string, colon, literal, number = match.groups()
        if string is not None:
            return f"{_KEY if colon else _STRING}{string}{_RESET}{colon or ''}"
        return f"{_LITERAL}{literal}{_RESET}" if literal is not None else f"{_NUMBER}{number}{_RESET}"

    return _TOKEN.sub(paint, text)


# ---- the commands' side ---------------------------------------------------------------------------------------


def chosen_format(args: Any, default: str = "table") -> str:
    """-o as given; else json for the old --json (an alias) or a --query without -o (as az defaults to json); else
    the command's default."""
    output = getattr(args, "output", None)
    if output:
        return str(output)
    if getattr(args, "json", False) or getattr(args, "query", None):
        return "json"
    return default


def emit(args: Any, body: Any, out: Any, *, text: Callable[[], str] | None = None,
         table_view: TableView | None = None, columns: Sequence[str] = (),
         legacy_json: Callable[[Any], str] | None = None) -> None:
    """Print a command's JSON value `body` as args ask. `text` is the command's own human form, printed when no
    format was asked for (without it the default is the table); `legacy_json` is what the old `--json` printed,
    kept byte for byte for the scripts that read it (when neither -o nor --query is given)."""
    if getattr(args, "json", False) and not getattr(args, "output", None) and not getattr(args, "query", None):
        out.write(legacy_json(body) if legacy_json else json.dumps(body, indent=2, default=str) + "\n")
        return
    output = chosen_format(args, default="text" if text is not None else "table")
    if output == "text" and text is not None:
        out.write(text())
    else:
        out.write(render(body, output, getattr(args, "query", None), table_view, columns))
