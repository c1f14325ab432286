"""Reading an upload's text: plain text, Markdown, HTML and PDF.

Every failure is a `DocumentError` whose message a user can act on. A PDF is the one
format that can attack its reader (streams that inflate to gigabytes, page trees of
millions of pages, malformed objects that send the parser into odd corners), so its
reading is capped three ways: pages, extracted text, and time; pypdf's own limits
(its `Configuration`: decompressed stream sizes, page tree size) are lowered to match,
for this reading only.
"""
from __future__ import annotations

import codecs
import io
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bs4 import BeautifulSoup, NavigableString
from gevent import Timeout, get_hub, monkey
from pypdf import PdfReader, apply_configuration

MAX_PDF_PAGES = 500
MAX_TEXT_CHARS = 5 * 1024 * 1024
MAX_PDF_SECONDS = 20.0
TOO_SLOW = f"Reading the PDF took longer than {MAX_PDF_SECONDS:.0f} s."
# One decompressed PDF stream may not exceed this (pypdf's default is 75 MB): a page's
# text never needs more, and a zip bomb stops here instead of filling memory.
MAX_STREAM_BYTES = 16 * 1024 * 1024
PDF_LIMITS = {name: MAX_STREAM_BYTES for name in (
    "maximum_declared_stream_length", "array_based_stream_maximum_output_length",
    "jbig2_maximum_output_length", "lzw_maximum_output_length",
    "run_length_maximum_output_length", "zlib_maximum_output_length",
    "brotli_maximum_output_length", "image_maximum_buffer_size")}
PDF_LIMITS["page_tree_maximum_entries"] = 10 * MAX_PDF_PAGES

# pypdf logs every oddity of a malformed file as a warning; the document's error says it.
logging.getLogger("pypdf").setLevel(logging.ERROR)

# The types Sluice reads, by their canonical content type, and the names that map there.
FORMATS = {"text/plain": "text", "text/markdown": "markdown", "text/html": "html",
           "application/pdf": "pdf"}
EXTENSIONS = {".txt": "text/plain", ".text": "text/plain", ".md": "text/markdown",
              ".markdown": "text/markdown", ".html": "text/html", ".htm": "text/html",
              ".pdf": "application/pdf"}
ALIASES = {"text/x-markdown": "text/markdown", "application/xhtml+xml": "text/html"}
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_DROPPED_HTML = ("script", "style", "noscript", "template", "svg", "iframe", "object")
_HTML_BLOCKS = ["p", "div", "li", "tr", "section", "article", "header", "footer", "main",
                "nav", "aside", "table", "ul", "ol", "dl", "dt", "dd", "blockquote", "pre",
                "figure", "figcaption", "form", "hr", "address", "details", "summary"]
# UTF-32's marks first: its little-endian one begins with UTF-16's.
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# Text has almost no control characters besides tab, line ends, form feed and escape
# (a log's colours): more than one in a hundred of the first characters means the bytes
# are something else.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f\ufffd]")
_SNIFF_CHARS = 8192


class DocumentError(Exception):
    """An upload Sluice cannot read; `str()` is the reason, for the user."""


@dataclass(frozen=True)
class ParsedText:
    """A document's text, and where its headings begin (offset, heading) so that each
    chunk can carry the heading it sits under."""

    text: str
    headings: list[tuple[int, str]] = field(default_factory=list)


def content_type_for(filename: str, declared: str | None) -> str | None:
    """The canonical type of an upload (from its declared type, else its name's
    extension), or None if Sluice does not read it."""
    declared = (declared or "").split(";")[0].strip().lower()
    declared = ALIASES.get(declared, declared)
    if declared in FORMATS:
        return declared
    dot = filename.rfind(".")
    return EXTENSIONS.get(filename[dot:].lower()) if dot >= 0 else None


def parse(data: bytes, content_type: str) -> ParsedText:
    """The text of `data`, read as `content_type` (one of FORMATS)."""
    kind = FORMATS[content_type]
    if kind == "pdf":
        return ParsedText(_clean(_pdf_text(data)))
    text = _decode(data)
    if kind == "html":
        text = _html_text(text)
    text = _clean(text)
    headings = [(m.start(), m.group(2).strip()) for m in _HEADING.finditer(text)]
    return ParsedText(text, headings if kind in ("markdown", "html") else [])


def _decode(data: bytes) -> str:
    """The text of a file in the encoding its byte-order mark names (UTF-16 and UTF-32,
    as Windows editors save "Unicode"), else UTF-8; anything else is read as
    Windows-1252, which never fails, rather than refusing a file over its encoding.
    Bytes that are not text at all (an image or archive renamed .txt) are refused."""
    codec = next((codec for bom, codec in _BOMS if data.startswith(bom)), None)
    if codec is not None:
        return data.decode(codec, errors="replace")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    sample = text[:_SNIFF_CHARS]
    if len(_CONTROL.findall(sample)) > max(1, len(sample) // 100):
        raise DocumentError("The file is not text (it holds binary data); upload text, "
                            "Markdown, HTML or PDF.")
    return text


def _clean(text: str) -> str:
    """Text every database can store: no NUL, no lone surrogates, `\\n` line ends."""
    text = text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    text = text.encode("utf-8", errors="replace").decode("utf-8")
    if len(text) > MAX_TEXT_CHARS:
        raise DocumentError(f"The document holds more than {MAX_TEXT_CHARS} characters of "
                            "text; split it into smaller files.")
    if not text.strip():
        raise DocumentError("The document holds no text to search.")
    return text


def _html_text(markup: str) -> str:
    """The visible text of a page, headings written as Markdown headings (`# …`) so they
    are found like a Markdown file's."""
    soup = BeautifulSoup(markup, "html.parser")
    for element in soup(list(_DROPPED_HTML)):
        element.decompose()
    for level in range(1, 7):
        for heading in soup.find_all(f"h{level}"):
            title = " ".join(heading.get_text(" ").split())
            heading.replace_with(NavigableString(f"\n\n{'#' * level} {title}\n\n"))
    # A block is a paragraph of its own, on both sides; cells and breaks part words too:
    # "<span>a</span><p>b</p>" and "<td>c</td><td>d</td>" are not the words "ab", "cd".
    for block in soup.find_all(_HTML_BLOCKS):
        block.insert_before(NavigableString("\n\n"))
        block.insert_after(NavigableString("\n\n"))
    for cell in soup.find_all(["td", "th", "br"]):
        cell.insert_after(NavigableString("\n" if cell.name == "br" else " "))
    text = re.sub(r" ?\n ?", "\n", re.sub(r"[ \t]+", " ", soup.get_text()))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _pdf_text(data: bytes) -> str:
    """The text of a PDF's pages, within the caps; a file that breaks the parser in any
    way is a `DocumentError`, never an exception the request or job did not expect."""
    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise DocumentError("The file is not a PDF (it does not begin with %PDF).")
    deadline = time.monotonic() + MAX_PDF_SECONDS

    def read() -> str:
        try:
            with apply_configuration(**PDF_LIMITS):
                return _read_pages(PdfReader(io.BytesIO(data), strict=False), deadline)
        except DocumentError:
            raise
        except Exception as exc:  # noqa: BLE001 - hostile input can break pypdf anywhere
            raise DocumentError(f"The PDF could not be read: {_reason(exc)}") from exc
    return _off_the_hub(read, MAX_PDF_SECONDS + 1)


def _off_the_hub(read: Callable[[], str], seconds: float) -> str:
    """`read()`, on an OS thread of gevent's pool when gevent runs this worker: pypdf is
    pure Python, and one page can take it many seconds, which on the hub would stall
    every request and stream of the worker; on a thread of its own it shares the
    interpreter with them. Past `seconds` the reading is given up (the deadline between
    pages cannot stop a page being read; the thread finishes it unheard)."""
    if not monkey.is_module_patched("threading"):
        return read()
    try:
        return get_hub().threadpool.spawn(read).get(timeout=seconds)
    except Timeout:
        raise DocumentError(TOO_SLOW) from None


def _read_pages(reader: PdfReader, deadline: float) -> str:
    """Each page's text, refusing past the page, text and time caps."""
    if reader.is_encrypted and not reader.decrypt(""):
        raise DocumentError("The PDF is encrypted with a password.")
    pages = len(reader.pages)
    if pages > MAX_PDF_PAGES:
        raise DocumentError(f"The PDF has {pages} pages; at most {MAX_PDF_PAGES} are read.")
    texts, total = [], 0
    for page in reader.pages:
        text = page.extract_text() or ""
        total += len(text)
        if total > MAX_TEXT_CHARS:
            raise DocumentError(f"The PDF holds more than {MAX_TEXT_CHARS} characters of "
                                "text; split it into smaller files.")
        if time.monotonic() > deadline:
            raise DocumentError(TOO_SLOW)
        texts.append(text)
    return "\n\n".join(texts)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
