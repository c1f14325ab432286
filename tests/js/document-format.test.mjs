// The Documents panel's words and the citation label, under `node --test tests/js/`.
import { test } from "node:test";
import assert from "node:assert/strict";

import { citationLabel } from "../../static/js/answer-format.js";
import {
  documentSummary, formatBytes, indexingText, uploadText,
} from "../../static/js/document-format.js";

test("formatBytes: bytes, then one decimal below 10 of a unit, whole numbers above", () => {
  const cases = [[0, "0 bytes"], [1, "1 byte"], [512, "512 bytes"], [1023, "1023 bytes"],
    [1024, "1 KB"], [1536, "1.5 KB"], [10 * 1024, "10 KB"], [5 * 1024 ** 2, "5 MB"],
    [3.25 * 1024 ** 3, "3.3 GB"], [5000 * 1024 ** 3, "5000 GB"]];
  for (const [bytes, text] of cases) assert.equal(formatBytes(bytes), text, String(bytes));
  for (const bad of [undefined, null, -1, NaN, Infinity, "12"]) assert.equal(formatBytes(bad), "");
});

test("documentSummary: size and status, with the chunks only once it is ready", () => {
  assert.equal(documentSummary({ size_bytes: 2150, status: "ready", chunk_count: 4 }), "2.1 KB · ready · 4 chunks");
  assert.equal(documentSummary({ size_bytes: 10, status: "ready", chunk_count: 1 }), "10 bytes · ready · 1 chunk");
  assert.equal(documentSummary({ size_bytes: 10, status: "processing", chunk_count: 0 }), "10 bytes · processing");
  assert.equal(documentSummary({ status: "failed" }), "failed");
});

test("uploadText: a percentage when the total is known, clamped", () => {
  assert.equal(uploadText("a.md", 0, 0), "Uploading a.md…");
  assert.equal(uploadText("a.md", 421, 1000), "Uploading a.md… 42%");
  assert.equal(uploadText("a.md", 2000, 1000), "Uploading a.md… 100%");
});

test("indexingText: the chunks so far, else the event's sentence", () => {
  assert.equal(indexingText({ stage: "indexing", chunks_done: 3, chunks_total: 12, message: "x" }),
    "Indexing 3 of 12 chunks…");
  assert.equal(indexingText({ stage: "queued", message: "The job was queued." }), "The job was queued.");
  assert.equal(indexingText({}), "Indexing…");
});

test("citationLabel: number from 1, file name, chunk counted from 1", () => {
  assert.equal(citationLabel({ filename: "handbook.md", chunk: 2 }, 0), "[1] handbook.md · chunk 3");
  assert.equal(citationLabel({ filename: "notes.txt", chunk: 0 }, 4), "[5] notes.txt · chunk 1");
  assert.equal(citationLabel({ filename: "  ", chunk: null }, 1), "[2] a document");
});
