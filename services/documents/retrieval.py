"""Finding the chunks of a user's documents that answer a question, and putting them
into a prompt with numbered citations.

Full-text search, ranked: BM25 over SQLite's FTS5 table, computed from the user's
own chunks (user_bm25.py), `ts_rank_cd` over PostgreSQL's `tsvector` column (both
indexes built by migration 0008). A question is reduced to its words, each quoted:
no operator or syntax of the user's ever reaches the search engine, and a question
of only punctuation or common words finds nothing rather than failing.

With an embedding model (SLUICE_EMBEDDING_MODEL) the question is embedded too, the
chunks are also ranked by cosine similarity (vectors.py), and the two rankings are
fused by reciprocal rank fusion, so a paraphrase that shares no word with its
answer is still found. If embedding the question fails, search is full-text only.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from ..providers.embeddings import Embedder
from ..providers.errors import ProviderError
from .user_bm25 import user_bm25
from .vectors import fuse, nearest_chunks

logger = logging.getLogger(__name__)

EXCERPT_CHARS = 240
MAX_TERMS = 32
FUSION_DEPTH = 20  # at least this many chunks from each ranking enter the fusion
_WORD = re.compile(r"\w+")
# Words too common to tell chunks apart; PostgreSQL's `english` configuration drops
# these itself, SQLite's FTS5 does not.
STOP_WORDS = frozenset("""a an and are as at be by can do does did for from has have how i
in is it its me my of on or our so that the their there these this to was were what when
where which who whom why will with you your""".split())

_POSTGRES = """
SELECT c.id, c.document_id, d.filename, c.position, c.text,
       ts_rank_cd(c.search_vector, q.query) AS score
FROM document_chunks AS c
JOIN documents AS d ON d.id = c.document_id,
     websearch_to_tsquery('english', :query) AS q(query)
WHERE c.search_vector @@ q.query AND d.user_id = :user_id AND d.status = 'ready'
  {only}
ORDER BY score DESC, c.id LIMIT :limit
"""


@dataclass(frozen=True)
class Source:
    """A chunk that search found: what the `sources` event lists, and its whole text for
    the prompt."""

    document_id: str
    filename: str
    chunk: int  # the chunk's position in its document
    score: float  # higher is better; comparable within one search only
    excerpt: str
    text: str

    def to_event(self) -> dict[str, Any]:
        """The chunk as the `sources` event carries it (API.md, section 4)."""
        return {"document_id": self.document_id, "filename": self.filename,
                "chunk": self.chunk, "score": round(self.score, 4), "excerpt": self.excerpt}


def query_terms(query: str) -> list[str]:
    """The words of a question that search looks for, lower case, each once."""
    words = [w for w in _WORD.findall(query.lower()) if w not in STOP_WORDS]
    return list(dict.fromkeys(words))[:MAX_TERMS]


def search(db: Session, user_id: str, query: str, document_ids: Sequence[str] | None,
           limit: int = 5, embedder: Embedder | None = None) -> list[Source]:
    """The `limit` best chunks for `query` among `user_id`'s ready documents (only those
    in `document_ids` when given: a thread's attachments), best first; ranked by
    full-text search, fused with vector search when an `embedder` is given."""
    terms = query_terms(query)
    if not terms or limit <= 0 or (document_ids is not None and not document_ids):
        return []
    if embedder is None:
        return [_source(row, float(row.score), terms)
                for row in _full_text(db, user_id, terms, document_ids, limit)]
    depth = max(limit * 4, FUSION_DEPTH)
    words = _full_text(db, user_id, terms, document_ids, depth)
    try:
        vector = embedder.embed([query])[0]
    except ProviderError as exc:
        logger.warning("search is full-text only: embedding the question with %s failed: %s",
                       embedder.id, exc.message)
        return [_source(row, float(row.score), terms) for row in words[:limit]]
    near = [row for _, row in nearest_chunks(db, user_id, vector, embedder.id,
                                             document_ids, depth)]
    fused = fuse([[row.id for row in words], [row.id for row in near]])
    rows = {row.id: row for row in [*near, *words]}
    best = sorted(fused, key=lambda chunk_id: -fused[chunk_id])[:limit]
    return [_source(rows[chunk_id], fused[chunk_id], terms) for chunk_id in best]


def _full_text(db: Session, user_id: str, terms: Sequence[str],
               document_ids: Sequence[str] | None, limit: int) -> list[Any]:
    """The full-text search's best `limit` rows, best first."""
    if db.get_bind().dialect.name != "postgresql":
        return list(user_bm25(db, user_id, terms, document_ids, limit))
    # Each term a plain word of websearch syntax: never the user's syntax.
    only = "AND d.id IN :document_ids" if document_ids is not None else ""
    statement = text(_POSTGRES.format(only=only))
    params: dict[str, Any] = {"query": " or ".join(terms), "user_id": user_id, "limit": limit}
    if document_ids is not None:
        statement = statement.bindparams(bindparam("document_ids", expanding=True))
        params["document_ids"] = list(document_ids)
    return list(db.execute(statement, params).all())


def _source(row: Any, score: float, terms: Sequence[str]) -> Source:
    return Source(row.document_id, row.filename, row.position, score,
                  excerpt(row.text, terms), row.text)


def excerpt(chunk: str, terms: Sequence[str], length: int = EXCERPT_CHARS) -> str:
    """About `length` characters of `chunk` around the first word search looked for."""
    flat = " ".join(chunk.split())
    if len(flat) <= length:
        return flat
    lowered = flat.lower()
    hits = [at for at in (lowered.find(term) for term in terms) if at >= 0]
    start = max(0, min(hits, default=0) - length // 4)
    start = flat.find(" ", start) + 1 if start > 0 else 0
    piece = flat[start:start + length].rsplit(" ", 1)[0]
    return ("…" if start > 0 else "") + piece + ("…" if start + len(piece) < len(flat) else "")


@dataclass(frozen=True)
class SourcesPrompt:
    """The system prompt's part about the documents, and the sources it holds (the ones
    the `sources` event lists: a source cut for space was not given to the model)."""

    text: str
    sources: tuple[Source, ...]


PROMPT_HEADER = ("Excerpts from the user's documents follow. Answer from them when they "
                 "are relevant and cite each one you use by its number, like [1]. If they "
                 "do not hold the answer, say so.")


def sources_prompt(sources: Sequence[Source], limit_tokens: int,
                   count: Callable[[str], int]) -> SourcesPrompt:
    """The sources as numbered excerpts, best first, as many as fit in `limit_tokens`
    (measured with `count`); the last one is shortened to fit if that keeps some of it.

    Each part is counted once: the parts' counts with their separators add up to at
    least the whole's (tokens do not span the blank line between parts)."""
    parts: list[str] = [PROMPT_HEADER]
    used: list[Source] = []
    separator = count("\n\n")
    size = count(PROMPT_HEADER)
    for source in sources:
        entry = f"[{len(used) + 1}] {source.filename} (chunk {source.chunk + 1})\n{source.text}"
        cost = separator + count(entry)
        if size + cost > limit_tokens:
            entry = _shortened(entry, limit_tokens - size - separator, count)
            if entry is None:
                break
            cost = separator + count(entry)
        parts.append(entry)
        used.append(source)
        size += cost
        if size >= limit_tokens:
            break
    if not used:
        return SourcesPrompt("", ())
    return SourcesPrompt("\n\n".join(parts), tuple(used))


def _shortened(entry: str, room: int, count: Callable[[str], int]) -> str | None:
    """`entry` cut (at words, halving) until it takes at most `room` tokens; None below
    200 characters."""
    while len(entry) > 200:
        entry = entry[:len(entry) // 2].rsplit(" ", 1)[0] + " …"
        if count(entry) <= room:
            return entry
    return None
