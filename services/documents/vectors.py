"""Vector search over document chunks, without pgvector: each chunk's embedding is
stored as packed float32 bytes and ranked here, in Python, by cosine similarity.

Vectors are scaled to unit length before they are stored, so cosine similarity is
a plain dot product. The ranking is bounded: it reads at most `MAX_CANDIDATES`
chunks, those of the user's most recently uploaded documents (in scope) first, so
a search costs the same however many documents a user has; older chunks beyond
the bound are still found by full-text search. `fuse` merges this ranking with
the full-text one by reciprocal rank fusion.
"""
from __future__ import annotations

import heapq
import math
import operator
import sys
from array import array
from collections.abc import Hashable, Sequence
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

MAX_CANDIDATES = 5000  # chunks ranked per search: ~0.1 s of Python at 1,536 dimensions
RRF_K = 60  # reciprocal rank fusion's constant (Cormack et al., 2009)

_CANDIDATES = """
SELECT c.id, c.embedding
FROM document_chunks AS c JOIN documents AS d ON d.id = c.document_id
WHERE d.user_id = :user_id AND d.status = 'ready' AND c.embedding_model = :model
  AND c.embedding IS NOT NULL {only}
ORDER BY d.created_at DESC, d.id, c.position LIMIT :bound
"""
_CHUNKS = """
SELECT c.id, c.document_id, d.filename, c.position, c.text
FROM document_chunks AS c JOIN documents AS d ON d.id = c.document_id
WHERE c.id IN :ids
"""


def pack(vector: Sequence[float]) -> bytes:
    """`vector` at unit length as little-endian float32 bytes (4 bytes a dimension)."""
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    packed = array("f", (x / norm for x in vector))
    if sys.byteorder != "little":
        packed.byteswap()
    return packed.tobytes()


def unpack(data: bytes) -> array[float]:
    """The vector `pack` stored."""
    vector = array("f")
    vector.frombytes(data)
    if sys.byteorder != "little":
        vector.byteswap()
    return vector


def nearest_chunks(db: Session, user_id: str, query: Sequence[float], model: str,
                   document_ids: Sequence[str] | None, limit: int) -> list[tuple[float, Any]]:
    """The `limit` chunks most similar to `query` among the bounded candidates, most
    similar first, as (cosine similarity, row with id, document_id, filename, position,
    text); only vectors of `model` are compared."""
    only = "AND d.id IN :document_ids" if document_ids is not None else ""
    statement = text(_CANDIDATES.format(only=only))
    params: dict[str, Any] = {"user_id": user_id, "model": model, "bound": MAX_CANDIDATES}
    if document_ids is not None:
        statement = statement.bindparams(bindparam("document_ids", expanding=True))
        params["document_ids"] = list(document_ids)
    target = unpack(pack(query))
    scored = []
    for row in db.execute(statement, params):
        vector = unpack(row.embedding)
        if len(vector) == len(target):  # a model's dimensions changed: skip, never fail
            scored.append((sum(map(operator.mul, vector, target)), row.id))
    best = heapq.nlargest(limit, scored, key=lambda pair: pair[0])
    if not best:
        return []
    # Only the winners' texts are read: the candidates are thousands of chunks.
    chunks = text(_CHUNKS).bindparams(bindparam("ids", expanding=True))
    rows = {row.id: row for row in db.execute(chunks, {"ids": [key for _, key in best]})}
    # (A chunk whose document was deleted in between is left out.)
    return [(similarity, rows[key]) for similarity, key in best if key in rows]


def fuse(rankings: Sequence[Sequence[Hashable]], k: int = RRF_K) -> dict[Hashable, float]:
    """Reciprocal rank fusion: each key scores the sum of 1 / (k + rank) over the rankings
    it appears in (rank from 1); a key high in either ranking rises, and neither
    ranking's raw scores (BM25, cosine) need to be comparable."""
    fused: dict[Hashable, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            fused[key] = fused.get(key, 0.0) + 1.0 / (k + rank)
    return fused
