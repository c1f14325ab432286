"""Splitting a document's text into overlapping chunks that search finds and prompts cite.

A chunk is about `size` characters and ends where the text does, preferably: at a
paragraph's end, else a sentence's, else a word's. The next one starts `overlap`
characters before that end (at a word), so a fact that straddles a cut is whole in
one of them. Each chunk knows its offset in the text; a chunk under a heading starts
with that heading, so its words count for search and the model sees the context.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

CHUNK_SIZE = 800
CHUNK_OVERLAP = 100
_PARAGRAPH_END = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]?\s")


@dataclass(frozen=True)
class Chunk:
    position: int
    text: str
    char_start: int


def chunk_text(text: str, headings: list[tuple[int, str]] | None = None,
               size: int = CHUNK_SIZE, overlap: int = CHUNK_OVERLAP) -> list[Chunk]:
    """`text` as chunks of about `size` characters overlapping by about `overlap`."""
    headings = headings or []
    heading_starts = [offset for offset, _ in headings]
    chunks: list[Chunk] = []
    start = _skip_blank(text, 0)
    while start < len(text):
        end = _cut(text, start, size)
        piece = text[start:end].rstrip()
        if piece:
            chunks.append(Chunk(len(chunks), _with_heading(piece, start, headings,
                                                           heading_starts), start))
        if end >= len(text):
            break
        start = _skip_blank(text, max(_next_start(text, end, overlap, start), start + 1))
    return chunks


def _skip_blank(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at


def _cut(text: str, start: int, size: int) -> int:
    """Where the chunk that begins at `start` ends: the best boundary in its second half."""
    limit = start + size
    if limit >= len(text):
        return len(text)
    window = text[start + size // 2:limit]
    for pattern in (_PARAGRAPH_END, _SENTENCE_END):
        ends = [m.end() for m in pattern.finditer(window)]
        if ends:
            return start + size // 2 + ends[-1]
    space = window.rfind(" ")
    return start + size // 2 + space + 1 if space >= 0 else limit


def _next_start(text: str, end: int, overlap: int, start: int) -> int:
    """About `overlap` characters before `end`, moved forward to the start of a word."""
    at = max(end - overlap, start + 1)
    while at < end and not text[at - 1].isspace():
        at += 1
    return at


def _with_heading(piece: str, start: int, headings: list[tuple[int, str]],
                  starts: list[int]) -> str:
    index = bisect.bisect_right(starts, start) - 1
    if index < 0:
        return piece
    offset, heading = headings[index]
    if offset == start or heading in piece[:len(heading) + 8]:
        return piece
    return f"{heading}\n{piece}"
