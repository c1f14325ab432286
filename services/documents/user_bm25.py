"""BM25 over one user's chunks on SQLite, so that no one's ranking depends on anyone else.

FTS5's own `bm25()` weighs each word by how rare it is in the whole index: every
user's chunks. A user's scores then moved when another user uploaded files with the
same words (their chunks fell to a score of 0.0 for a word common elsewhere), which
both spoils the ranking and tells one user something about another's files.

Here FTS5 only finds and marks the matches. For each word of the question one query
lists the user's matching chunks (in scope) with the word's occurrences marked by
`highlight()`; the rarity of the word, the length of a chunk and the average length
all come from the user's own chunks, and BM25 is computed from those. A word in more
of the user's chunks than MAX_MATCHES_PER_TERM has those where it weighs most scored
(FTS5's order for the one word), and its rarity counted over all of them.
(PostgreSQL's `ts_rank_cd` looks at one chunk at a time: it needs none of this.)
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

K1, B = 1.2, 0.75  # FTS5's own constants
MARK = "\x01"  # put before each occurrence of the word by highlight()
# At most this many chunks per word are read and scored: those where the word weighs
# most (FTS5's order for a one-word query: its occurrences against the chunk's length).
# How many of the user's chunks hold it is counted in full.
MAX_MATCHES_PER_TERM = 2000

_SCOPE = "d.user_id = :user_id AND d.status = 'ready' {only}"
_SIZE = f"""
SELECT count(*) AS chunks, avg(length(c.text)) AS mean_length
FROM document_chunks AS c JOIN documents AS d ON d.id = c.document_id
WHERE {_SCOPE}
"""
_MATCHES = f"""
SELECT c.id, c.document_id, d.filename, c.position, c.text,
       highlight(document_chunks_fts, 0, char(1), '') AS marked
FROM document_chunks_fts
JOIN document_chunks AS c ON c.id = document_chunks_fts.rowid
JOIN documents AS d ON d.id = c.document_id
WHERE document_chunks_fts MATCH :term AND {_SCOPE}
ORDER BY bm25(document_chunks_fts), c.id LIMIT :most
"""
_FOUND_IN = f"""
SELECT count(*) FROM document_chunks_fts
JOIN document_chunks AS c ON c.id = document_chunks_fts.rowid
JOIN documents AS d ON d.id = c.document_id
WHERE document_chunks_fts MATCH :term AND {_SCOPE}
"""


@dataclass(frozen=True)
class Hit:
    """A chunk that matched, with its score (higher is better)."""

    id: int
    document_id: str
    filename: str
    position: int
    text: str
    score: float


def user_bm25(db: Session, user_id: str, terms: Sequence[str],
              document_ids: Sequence[str] | None, limit: int) -> list[Hit]:
    """The best `limit` chunks for `terms` among the user's ready chunks (only those of
    `document_ids` when given), best first."""
    size = db.execute(_statement(_SIZE, document_ids), _params(user_id, document_ids)).one()
    if not size.chunks:
        return []
    chunks: dict[int, Any] = {}
    counts: dict[int, dict[str, int]] = {}
    found_in: dict[str, int] = {}
    for term in terms:
        params = {**_params(user_id, document_ids), "term": f'"{term}"',
                  "most": MAX_MATCHES_PER_TERM}
        rows = db.execute(_statement(_MATCHES, document_ids), params).all()
        found_in[term] = len(rows) if len(rows) < MAX_MATCHES_PER_TERM else \
            db.execute(_statement(_FOUND_IN, document_ids), params).scalar_one()
        for row in rows:
            chunks[row.id] = row
            counts.setdefault(row.id, {})[term] = \
                row.marked.count(MARK) - row.text.count(MARK)
    scores = {chunk_id: _score(counts[chunk_id], len(chunks[chunk_id].text) / size.mean_length,
                               found_in, size.chunks)
              for chunk_id in chunks}
    best = sorted(scores, key=lambda chunk_id: (-scores[chunk_id], chunk_id))[:limit]
    return [Hit(chunk_id, chunks[chunk_id].document_id, chunks[chunk_id].filename,
                chunks[chunk_id].position, chunks[chunk_id].text, scores[chunk_id])
            for chunk_id in best]


def _score(counts: dict[str, int], relative_length: float, found_in: dict[str, int],
           total: int) -> float:
    """BM25 of one chunk: each word's occurrences, weighed by its rarity among the
    user's chunks and damped for a chunk longer than their average."""
    score = 0.0
    for term, count in counts.items():
        rarity = math.log(1 + (total - found_in[term] + 0.5) / (found_in[term] + 0.5))
        score += rarity * count * (K1 + 1) / (count + K1 * (1 - B + B * relative_length))
    return score


def _statement(sql: str, document_ids: Sequence[str] | None) -> Any:
    only = "AND d.id IN :document_ids" if document_ids is not None else ""
    statement = text(sql.format(only=only))
    if document_ids is not None:
        statement = statement.bindparams(bindparam("document_ids", expanding=True))
    return statement


def _params(user_id: str, document_ids: Sequence[str] | None) -> dict[str, Any]:
    params: dict[str, Any] = {"user_id": user_id}
    if document_ids is not None:
        params["document_ids"] = list(document_ids)
    return params
