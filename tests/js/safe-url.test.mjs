// The URL policy for model output (static/js/safe-url.js), under Node's test runner:
//   node --test tests/js/
// Values are given as an attribute holds them, entities already decoded by the parser.
import { test } from "node:test";
import assert from "node:assert/strict";

import { imageSource, safeLinkHref } from "../../static/js/safe-url.js";

const PAYLOAD = "window.__pwned=1";
const REFUSED_LINKS = [
  `javascript:${PAYLOAD}`,
  `JaVaScRiPt:${PAYLOAD}`,
  `  javascript:${PAYLOAD}`,
  `\u0001\u0010 javascript:${PAYLOAD}`,
  `java\tscript:${PAYLOAD}`,
  `java\nscript:${PAYLOAD}`,
  `java\r\nscript:${PAYLOAD}`,
  `javascript\t:${PAYLOAD}`,
  `javascript://%0a${PAYLOAD}`,
  `vbscript:msgbox(1)`,
  `VBScript:msgbox(1)`,
  "data:text/html,<script>opener.__pwned=1</script>",
  "data:text/html;base64,PHNjcmlwdD5vcGVuZXIuX19wd25lZD0xPC9zY3JpcHQ+",
  "file:///etc/passwd",
  "ftp://127.0.0.1/x",
  "tel:+1555",
  "/api/v1/threads",
  "#thread",
  "//127.0.0.2/x",
  "relative/path",
  "",
];

for (const value of REFUSED_LINKS) {
  test(`a link to ${JSON.stringify(value)} is dropped`, () => {
    assert.equal(safeLinkHref(value), null);
  });
}

test("http, https and mailto links are kept, normalised", () => {
  assert.equal(safeLinkHref("http://127.0.0.1:9/a b"), "http://127.0.0.1:9/a%20b");
  assert.equal(safeLinkHref("  HTTPS://127.0.0.1/x  "), "https://127.0.0.1/x");
  assert.equal(safeLinkHref("mailto:someone@127.0.0.1"), "mailto:someone@127.0.0.1");
});

test("a remote image waits for a click and names its host", () => {
  assert.deepEqual(imageSource("http://127.0.0.2:8080/p.png?q=secret"),
                   { remote: "http://127.0.0.2:8080/p.png?q=secret", host: "127.0.0.2:8080" });
  assert.deepEqual(imageSource(" https://127.0.0.1/x.png"),
                   { remote: "https://127.0.0.1/x.png", host: "127.0.0.1" });
});

test("an inline data image is shown as it is; other data URLs are not", () => {
  const gif = "data:image/gif;base64,R0lGODlhAQABAAAAACw=";
  assert.deepEqual(imageSource(gif), { inline: gif });
  assert.equal(imageSource("data:text/html,<b>x</b>"), null);
  assert.equal(imageSource("data:image/x-unknown,abc"), null);
});

test("images with other schemes, relative or protocol-relative URLs are dropped", () => {
  for (const value of ["javascript:1", "java\tscript:1", "file:///x.png", "/static/x.png",
                       "//127.0.0.2/x.png", "x.png", "blob:http://127.0.0.1/x", ""]) {
    assert.equal(imageSource(value), null, value);
  }
});
