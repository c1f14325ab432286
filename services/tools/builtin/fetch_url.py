"""fetch_url: lets a model read a web page, without letting it reach into Sluice's network.

The URL comes from a model that reads text from anyone, so it is treated like a
user's webhook URL: the SSRF guard of services/webhooks checks it, the name is
resolved once and the connection goes to the checked address only. Redirects are
followed here, at most three, each hop checked again (a public page may redirect
to 169.254.169.254). Time (10 s for everything) and size (2 MB read) are bounded.
SLUICE_WEBHOOK_ALLOW_PRIVATE (`context.allow_private`) governs this as it does
webhooks; cloud metadata services stay refused even then.

HTML is reduced to its text (the title, paragraphs and line breaks kept, scripts
and styles dropped); plain text and JSON come back as they are.
"""
from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urljoin

from bs4 import BeautifulSoup, NavigableString
from bs4.element import PreformattedString

from ...webhooks.guard import Target, UrlRefused, check_url, resolve
from ...webhooks.pinned_http import Answer, ExchangeFailed, exchange
from ..registry import ToolContext, ToolError, server_tool

MAX_REDIRECTS = 3
MAX_BYTES = 2 * 1024 * 1024
TOTAL_SECONDS = 10.0
CONNECT_SECONDS = 5.0
MAX_OUTPUT = 16000
TRUNCATED = "\n[truncated]"
USER_AGENT = "Sluice-FetchUrl/1"
_REDIRECTS = (301, 302, 303, 307, 308)
_TEXT_TYPES = ("text/plain", "application/json")
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_DROPPED = ["script", "style", "noscript", "template", "head"]
_BLOCKS = ["p", "div", "section", "article", "main", "header", "footer", "nav", "aside",
           "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "dl", "dt", "dd", "table",
           "tr", "pre", "blockquote", "figure", "figcaption", "form", "hr"]
_SPACES = re.compile(r"\s+")
_BLANK_LINES = re.compile(r"\n{3,}")


@server_tool(
    description="Fetch a web page (http or https) and return its text: HTML reduced to "
                "its title and text, plain text and JSON as they are.",
    parameters={
        "type": "object",
        "properties": {"url": {"type": "string", "minLength": 1, "maxLength": 2048,
                               "description": "An absolute http(s) URL"}},
        "required": ["url"],
        "additionalProperties": False,
    },
    timeout=TOTAL_SECONDS + 5.0, max_output=MAX_OUTPUT)
def fetch_url(context: ToolContext, arguments: dict[str, Any]) -> str:
    """The page's text, cut to fit the tool's output with a note saying so."""
    answer, url = fetch(arguments["url"], context)
    text = f"URL: {url}\n\n{page_text(answer)}"
    if answer.truncated or len(text) > MAX_OUTPUT:
        text = text[:MAX_OUTPUT - len(TRUNCATED)] + TRUNCATED
    return text


def fetch(url: str, context: ToolContext) -> tuple[Answer, str]:
    """GET `url`, following up to three redirects, each hop checked by the guard; the
    final answer (2xx) and the URL it came from."""
    ends = time.monotonic() + TOTAL_SECONDS
    target = _checked(url, context.allow_private)
    for _hop in range(MAX_REDIRECTS + 1):
        answer = _get(target, context, ends - time.monotonic())
        if answer.status not in _REDIRECTS:
            if not 200 <= answer.status < 300:
                raise ToolError(f"{target.url} answered {answer.status} {answer.reason}".rstrip())
            return answer, target.url
        target = redirect_target(target.url, answer.headers.get("Location"),
                                 context.allow_private)
    raise ToolError(f"more than {MAX_REDIRECTS} redirects, the last to {target.url}")


def redirect_target(current: str, location: str | None, allow_private: bool) -> Target:
    """Where a redirect from `current` leads, checked like the first URL was."""
    if not location:
        raise ToolError(f"{current} redirects without saying where (no Location)")
    return _checked(urljoin(current, location.strip()), allow_private)


def _checked(url: str, allow_private: bool) -> Target:
    try:
        return check_url(url, allow_private)
    except UrlRefused as exc:
        raise ToolError(f"cannot fetch {url[:200]}: {exc}") from None


def _get(target: Target, context: ToolContext, seconds_left: float) -> Answer:
    """One GET to the address the target's name resolves to now, if that may be reached."""
    if context.cancelled.is_set():
        raise ToolError("cancelled")
    if seconds_left <= 0:
        raise ToolError(f"no answer within {TOTAL_SECONDS:g}s in all")
    try:
        pinned = resolve(target, context.allow_private)
        return exchange(pinned, "GET", None, {
            "User-Agent": USER_AGENT, "Accept-Encoding": "identity",
            "Accept": "text/html, text/plain, application/json;q=0.9, */*;q=0.1"},
            connect_timeout=min(CONNECT_SECONDS, seconds_left), read_timeout=seconds_left,
            total_timeout=seconds_left, max_body_bytes=MAX_BYTES)
    except (UrlRefused, ExchangeFailed) as exc:
        raise ToolError(f"cannot fetch {target.url}: {exc}") from None


def page_text(answer: Answer) -> str:
    """The answer's body as text for the model, by its content type."""
    media_type, charset = _content_type(answer.headers.get("Content-Type", ""))
    if media_type in _HTML_TYPES:
        return html_to_text(answer.body, charset)
    if media_type in _TEXT_TYPES or media_type.endswith("+json"):
        return answer.body.decode(charset or "utf-8", errors="replace")
    raise ToolError(f"the page is {media_type or 'of no stated type'}; fetch_url reads "
                    "HTML, plain text and JSON only")


def _content_type(header: str) -> tuple[str, str | None]:
    """The media type, lower case, and the charset if one is named (and known)."""
    media_type, *parameters = header.split(";")
    charset = None
    for parameter in parameters:
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"') or None
    if charset is not None:
        try:
            "".encode(charset)
        except LookupError:
            charset = None
    return media_type.strip().lower(), charset


def html_to_text(body: bytes, charset: str | None = None) -> str:
    """A page's readable text: the title first, then the text of the body with its
    paragraphs and line breaks, whitespace collapsed as a browser would."""
    soup = BeautifulSoup(body, "html.parser", from_encoding=charset)
    title = _SPACES.sub(" ", soup.title.get_text()).strip() if soup.title else ""
    for tag in soup.find_all(_DROPPED):
        tag.decompose()
    for string in soup.find_all(string=True):
        if isinstance(string, PreformattedString):  # comments, doctypes, CDATA
            string.extract()
        elif string.find_parent("pre") is None:
            string.replace_with(NavigableString(_SPACES.sub(" ", string)))
    for line_break in soup.find_all("br"):
        line_break.replace_with(NavigableString("\n"))
    for block in soup.find_all(_BLOCKS):
        block.insert_before(NavigableString("\n\n"))
        block.insert_after(NavigableString("\n\n"))
    lines = (line.strip(" ") for line in soup.get_text().split("\n"))
    text = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
    return f"{title}\n\n{text}" if title and not text.startswith(title) else text
