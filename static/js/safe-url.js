// Which URLs from model output the chat page will use. Each value goes through the
// browser's own URL parser, the same one a click or an image load would use, so no
// spelling of a scheme can slip past: entities are already decoded in an attribute,
// and the parser drops leading spaces and control characters and any tab or newline
// inside, and lower-cases the scheme. Links: absolute http, https and mailto only.
// Images: inline data:image/… (nothing to fetch), or absolute http(s), which the page
// fetches only when the reader asks, whatever the host (Sluice's own origin included:
// the reader decides every fetch). Relative URLs are refused: a model cannot know this
// page's paths, and one could quietly call its API or, as a link "#<id>", switch
// threads. Pure functions, so Node's test runner checks them too.

const LINK_SCHEMES = new Set(["http:", "https:", "mailto:"]);
const FETCHED_SCHEMES = new Set(["http:", "https:"]);
const INLINE_IMAGE = /^data:image\/(?:png|gif|jpeg|webp|avif|bmp|svg\+xml)[;,]/i;

function absolute(value) {
  if (typeof value !== "string" || !value) return null;
  try {
    return new URL(value);  // no base: a relative URL throws
  } catch {
    return null;
  }
}

/** The href to keep for a link, normalised, or null to drop it. */
export function safeLinkHref(value) {
  const url = absolute(value);
  return url && LINK_SCHEMES.has(url.protocol) ? url.href : null;
}

/**
 * What to do with an image's src: {inline: src} to show at once (a data: image),
 * {remote: url, host} to offer behind a click, or null to drop it.
 */
export function imageSource(value) {
  const url = absolute(value);
  if (!url) return null;
  if (url.protocol === "data:") return INLINE_IMAGE.test(url.href) ? { inline: url.href } : null;
  if (!FETCHED_SCHEMES.has(url.protocol) || !url.host) return null;
  return { remote: url.href, host: url.host };
}
