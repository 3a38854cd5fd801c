"""Paging: server-side sorting and page slicing of table rows, shared by the call list and the stream list.

The tables use Dash's custom sort and paging, so the browser only ever receives one page of rows, however
many calls or streams the capture holds.
"""

from __future__ import annotations

PAGE_SIZE = 25


def sort_rows(rows: list[dict], sort_by: list[dict] | None, keys: dict[str, str] | None = None) -> list[dict]:
    """Rows sorted by the table's sort_by ([{"column_id", "direction"}], first = most significant), blanks last
    in either direction. `keys` maps a shown column to the field it sorts by (a link column sorts by its id)."""
    for sort in reversed(sort_by or []):
        column = (keys or {}).get(sort["column_id"], sort["column_id"])
        present = [r for r in rows if r.get(column) is not None]
        present.sort(key=lambda r: r[column], reverse=sort["direction"] == "desc")
        rows = present + [r for r in rows if r.get(column) is None]
    return rows


def page_of(rows: list[dict], page: int | None) -> tuple[list[dict], int, int]:
    """(the page's rows, number of pages, the page shown): a page past the end shows the last one."""
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    page = min(max(page or 0, 0), pages - 1)
    return rows[page * PAGE_SIZE:(page + 1) * PAGE_SIZE], pages, page
