// Model output made safe for the chat page: HTML in, a DocumentFragment out, built by
// DOMPurify (our own instance, hooks included) in its inert document. A chat answer is
// text in a box, not a document: it may not run code, restyle or cover the page, ask
// for input, frame or embed anything, or make the browser fetch anything on its own
// (an image URL is the classic way to carry the conversation off to another site). So
// remote images arrive as a "Load image from <host>" button, and only a click fetches
// one, without a Referer. The fragment still belongs to the inert document when it is
// returned: no remote <img> is ever in the live page unless the reader asked for it.
import DOMPurify from "../vendor/dompurify/purify.es.js";
import { imageSource, safeLinkHref } from "./safe-url.js";

// What Markdown renders to, plus harmless inline tags models like to write. Any other
// element is removed and its children kept in its place, unless its contents go too
// (DOMPurify's list: script, style, svg, math, iframe, audio, video…, and ours below).
const ALLOWED_TAGS = [
  "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "code",
  "ul", "ol", "li", "dl", "dt", "dd", "table", "caption", "thead", "tbody", "tfoot",
  "tr", "th", "td", "strong", "b", "em", "i", "u", "s", "del", "ins", "mark", "small",
  "sub", "sup", "kbd", "samp", "var", "abbr", "cite", "q", "dfn", "span", "div",
  "details", "summary", "figure", "figcaption", "a", "img",
];
// href and src are judged again by the hook below (safe-url.js). class survives only
// as code's language-*: the page's own classes (.sidebar, .composer, .notice) would let
// an answer dress up as the page's UI or lay itself over it. Never kept: id and name
// (DOM clobbering: <img name=prompt> would shadow the page's globals, and form= could
// hook the page's own #composer), style (restyling; the CSP refuses it too), every on*
// handler, srcset/background/poster/ping (fetches), target/rel (we set them), and
// aria-* / data-* (an answer may not rename its links for screen readers, nor forge
// our own markers).
const ALLOWED_ATTR = ["href", "src", "alt", "title", "class", "align", "colspan", "rowspan",
                      "start", "open"];
// The named threats, refused even if the allowlists above ever grow:
// - style, link, meta, base, title: restyle the page, load sheets, refresh it away,
//   re-base its relative URLs (the page's own fetch("/api/…") included);
// - form controls, and label/fieldset/legend with them: a form "paste your API key"
//   posting elsewhere is phishing in the page's own frame; their text is kept;
// - iframe, frame, frameset, object, embed, applet, portal: other documents and plugins;
// - svg, math: foreign content, with its own <style>, links and parser tricks, and
//   nothing Markdown produces; audio, video, source, track, picture: fetch on render;
// - dialog (sits over the page), template and noscript (parse differently later).
const FORBID_TAGS = [
  "script", "style", "link", "meta", "base", "title", "template", "noscript",
  "form", "input", "button", "textarea", "select", "option", "optgroup", "datalist",
  "output", "label", "fieldset", "legend", "iframe", "frame", "frameset", "object",
  "embed", "applet", "portal", "svg", "math", "audio", "video", "source", "track",
  "picture", "dialog",
];
const FORBID_ATTR = [
  "style", "id", "name", "form", "formaction", "action", "srcset", "sizes", "background",
  "poster", "ping", "download", "target", "rel", "usemap", "tabindex", "accesskey",
  "autofocus", "contenteditable", "popover", "srcdoc", "xlink:href",
];
// Dropped with everything inside: a control's text is its UI, not the answer's text.
const FORBID_CONTENTS_TOO = ["button", "select", "option", "optgroup", "datalist",
                             "textarea", "object", "embed", "frameset", "dialog"];

const REMOTE = "data-remote-src";  // set only by the hook below; DOMPurify drops data-*

const purifier = DOMPurify(window);
const CONFIG = {
  ALLOWED_TAGS, ALLOWED_ATTR, FORBID_TAGS, FORBID_ATTR,
  ADD_FORBID_CONTENTS: FORBID_CONTENTS_TOO,
  ALLOW_DATA_ATTR: false,
  ALLOW_ARIA_ATTR: false,
  // http(s) and mailto, or a value that names no scheme (align="left", colspan="2");
  // href and src get the stricter safeLinkHref / imageSource in the hook.
  ALLOWED_URI_REGEXP: /^(?:(?:https?|mailto):|[^a-z]|[a-z+.-]+(?:[^a-z+.:-]|$))/i,
  RETURN_DOM_FRAGMENT: true,
};

// A task-list checkbox (marked writes `<input disabled type=checkbox>`) becomes the
// character it shows; every other input is dropped by FORBID_TAGS.
purifier.addHook("uponSanitizeElement", (node, data) => {
  if (data.tagName !== "input" || node.getAttribute("type")?.toLowerCase() !== "checkbox") return;
  node.replaceWith(node.ownerDocument.createTextNode(node.hasAttribute("checked") ? "☑" : "☐"));
});

purifier.addHook("afterSanitizeAttributes", (node) => {
  if (node.nodeType !== 1) return;
  for (const { name } of Array.from(node.attributes)) {
    if (name.toLowerCase().startsWith("on")) node.removeAttribute(name);
  }
  const tag = node.nodeName.toLowerCase();
  if (node.hasAttribute("class")) {
    const kept = tag === "code" && /^language-[\w+#.-]+$/.test(node.getAttribute("class"));
    if (!kept) node.removeAttribute("class");
  }
  if (node.hasAttribute("href")) {
    const href = tag === "a" ? safeLinkHref(node.getAttribute("href")) : null;
    if (!href) {
      node.removeAttribute("href");
    } else {
      node.setAttribute("href", href);
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer");
    }
  }
  if (node.hasAttribute("src")) {
    const source = tag === "img" ? imageSource(node.getAttribute("src")) : null;
    node.removeAttribute("src");
    if (source?.inline) node.setAttribute("src", source.inline);
    else if (source?.remote) node.setAttribute(REMOTE, source.remote);
  }
});

/** A real image, fetched without a Referer; `doc` is the document it is made in. */
function remoteImage(doc, url, alt) {
  const img = doc.createElement("img");
  img.setAttribute("referrerpolicy", "no-referrer");  // before src: the fetch reads it
  img.setAttribute("alt", alt);
  img.setAttribute("src", url);
  return img;
}

function placeholder(doc, source, alt) {
  const button = doc.createElement("button");
  button.type = "button";
  button.className = "remote-image";
  button.dataset.src = source.remote;
  button.title = source.remote;
  if (alt) button.dataset.alt = alt;
  button.setAttribute("aria-label", alt ? `Load image “${alt}” from ${source.host}`
                                        : `Load image from ${source.host}`);
  const host = doc.createElement("span");
  host.className = "host";
  host.textContent = source.host;
  button.append(doc.createTextNode("Load image from "), host);
  return button;
}

/**
 * Sanitized HTML as a fragment to insert. Remote images become placeholders unless
 * their URL is in `shownImages` (the reader already clicked one in this answer).
 */
export function safeFragment(html, shownImages = new Set()) {
  const fragment = purifier.sanitize(html, CONFIG);
  const doc = fragment.ownerDocument;  // the inert one: nothing in it is fetched
  for (const img of Array.from(fragment.querySelectorAll("img"))) {
    if (imageSource(img.getAttribute("src") || "")?.inline) continue;
    const source = imageSource(img.getAttribute(REMOTE) || "");
    const alt = img.getAttribute("alt") || "";
    if (!source?.remote) img.replaceWith(doc.createTextNode(alt));
    else if (shownImages.has(source.remote)) img.replaceWith(remoteImage(doc, source.remote, alt));
    else img.replaceWith(placeholder(doc, source, alt));
  }
  return fragment;
}

/** Clicking a placeholder inside `container` loads its image (and remembers that). */
export function loadImagesOnClick(container, shownImages) {
  container.addEventListener("click", (event) => {
    const button = event.target.closest?.("button.remote-image");
    if (!button || !container.contains(button)) return;
    event.preventDefault();  // a placeholder inside a link ([![badge](…)](…)) only loads
    const source = imageSource(button.dataset.src || "");
    if (!source?.remote) return;
    shownImages.add(source.remote);
    button.replaceWith(remoteImage(document, source.remote, button.dataset.alt || ""));
  });
}
