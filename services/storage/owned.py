"""Rows that belong to a user: every query on them is narrowed here, so isolation is one
line to read and cannot be forgotten by a new endpoint."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Select


def owned(query: Select[Any], user: Any) -> Select[Any]:
    """`query` narrowed to the rows `user` (anything with an `id`) owns: those of the
    query's first table whose `user_id` is theirs (`select(Memory)`, `select(Document.id)`,
    `select(func.count()).select_from(Memory)` alike)."""
    table = query.get_final_froms()[0]
    return query.where(table.c.user_id == user.id)
