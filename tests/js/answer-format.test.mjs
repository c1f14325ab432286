// What an answer shows besides its text (static/js/answer-format.js), under Node:
//   node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  formatArguments, formatDuration, isLong, statusText, toolResultOfMessage, toolState,
} from "../../static/js/answer-format.js";

test("durations read as a person would say them", () => {
  const cases = [[0, "0 ms"], [12, "12 ms"], [999.6, "1000 ms"], [1400, "1.4 s"],
    [12_345, "12 s"], [125_000, "2 min 5 s"], [null, ""], [undefined, ""], [-1, ""], [NaN, ""], ["12", ""]];
  for (const [ms, text] of cases) assert.equal(formatDuration(ms), text, String(ms));
});

test("arguments: short JSON on one line, long JSON indented, anything else as it came", () => {
  assert.equal(formatArguments('{"expression":"6*7"}'), '{"expression": "6*7"}');
  assert.equal(formatArguments('{"city": "Zürich", "days": [1, 2]}'), '{"city": "Zürich", "days": [1, 2]}');
  const long = JSON.stringify({ query: "x".repeat(70), limit: 5 });
  assert.equal(formatArguments(long), `{\n  "query": "${"x".repeat(70)}",\n  "limit": 5\n}`);
  assert.equal(formatArguments("not json {"), "not json {");
  assert.equal(formatArguments('"a string"'), '"a string"');
  for (const none of ["{}", "", "  ", null, undefined]) assert.equal(formatArguments(none), "", String(none));
  assert.equal(formatArguments({ a: 1 }), '{"a": 1}'); // already parsed
});

test("a text is long when it has many characters or many lines", () => {
  assert.equal(isLong("42"), false);
  assert.equal(isLong("x".repeat(241)), true);
  assert.equal(isLong("a\nb\nc\nd\ne\nf\ng"), true);
  assert.equal(isLong(null), false);
});

test("a tool card's state: requested, running, done or failed with the duration, no result", () => {
  const server = { id: "c1", name: "calculator", server: true };
  const caller = { id: "c2", name: "get_weather", server: false };
  assert.deepEqual(toolState(caller), { state: "requested", label: "requested" });
  assert.deepEqual(toolState({ id: "c3", name: "old" }), { state: "requested", label: "requested" });
  assert.deepEqual(toolState(server), { state: "running", label: "running…" });
  assert.deepEqual(toolState(server, undefined, true), { state: "unfinished", label: "no result" });
  assert.deepEqual(toolState(server, { id: "c1", result: "42", duration_ms: 12 }),
                   { state: "done", label: "done · 12 ms" });
  assert.deepEqual(toolState(server, { id: "c1", error: "division by zero", duration_ms: 3 }, true),
                   { state: "failed", label: "failed · 3 ms" });
  // A caller's result, posted back later, has no duration.
  assert.deepEqual(toolState(caller, { id: "c2", result: "-2°C", duration_ms: null }),
                   { state: "done", label: "done" });
  assert.deepEqual(toolState(server, { id: "c1", result: "" }), { state: "done", label: "done" });
});

test("a stored tool message reads as the tool_result event it was", () => {
  assert.deepEqual(toolResultOfMessage({ role: "tool", tool_call_id: "c1", content: "42",
    status: "complete", error: null, metrics: { duration_ms: 12 } }),
  { id: "c1", result: "42", duration_ms: 12 });
  assert.deepEqual(toolResultOfMessage({ role: "tool", tool_call_id: "c2", content: "Error: division by zero",
    status: "error", error: { code: "tool_error", message: "division by zero" }, metrics: { duration_ms: 3 } }),
  { id: "c2", error: "division by zero", duration_ms: 3 });
  // A caller's result, stored before tools ran on the server: no metrics, no error field.
  assert.deepEqual(toolResultOfMessage({ role: "tool", tool_call_id: "c3", content: "09:41", status: "complete" }),
                   { id: "c3", result: "09:41", duration_ms: null });
  assert.deepEqual(toolResultOfMessage({ role: "tool", tool_call_id: "c4", content: "Error: boom", status: "error",
    error: null }), { id: "c4", error: "Error: boom", duration_ms: null });
});

test("the status line says the server's sentence, or one made from the stage", () => {
  assert.equal(statusText({ stage: "connecting", message: "Waiting for demo/echo…", model: "demo/echo" }),
               "Waiting for demo/echo…");
  assert.equal(statusText({ stage: "retrying", message: "  openai/x failed (rate_limited); retrying in 2 s. " }),
               "openai/x failed (rate_limited); retrying in 2 s.");
  assert.equal(statusText({ stage: "tool_running", tools: ["current_time", "calculator"] }),
               "Running current_time, calculator…");
  assert.equal(statusText({ stage: "retrying", message: "" }), "Retrying…");
  assert.equal(statusText({ stage: "something_new" }), "Working…");
  assert.equal(statusText({ stage: "step", message: 42 }), "Next step…"); // not a sentence
  assert.equal(statusText(undefined), "Working…");
});
