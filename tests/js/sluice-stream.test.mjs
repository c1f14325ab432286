// The browser's streaming module, run under Node's own test runner:
//   node --test tests/js/
// The server is replaced by a scripted fetch whose responses stream chosen bytes.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  createEventParser,
  openStream,
  sendMessage,
  streamingPreference,
  transportPreference,
} from "../../static/js/sluice-stream.js";

const encoder = new TextEncoder();

// ---------------------------------------------------------------- the parser

function parse(chunks) {
  const events = [];
  const parser = createEventParser((event) => events.push(event));
  for (const chunk of chunks) parser.push(chunk);
  parser.end();
  return events;
}

/** The body cut in two at every byte offset, then cut into single bytes. */
function everySplit(bytes) {
  const splits = [];
  for (let i = 0; i <= bytes.length; i++) splits.push([bytes.subarray(0, i), bytes.subarray(i)]);
  splits.push(Array.from(bytes, (_, i) => bytes.subarray(i, i + 1)));
  return splits;
}

const msg = (data, id = null, event = "message") => ({ id, event, data });

const PARSER_CASES = [
  ["LF and multi-byte characters", "id: 1\nevent: delta\ndata: Grüße 世界 👋🏽\n\n",
    [msg("Grüße 世界 👋🏽", "1", "delta")]],
  ["CRLF", "id: 1\r\nevent: delta\r\ndata: Grüße 世界 👋🏽\r\n\r\nid: 2\r\ndata: b\r\n\r\n",
    [msg("Grüße 世界 👋🏽", "1", "delta"), msg("b", "2")]],
  ["CR only", "data: a\r\rdata: 👋🏽\r\r", [msg("a"), msg("👋🏽")]],
  // Split between CR and LF, the LF must not read as a blank line that ends the event early.
  ["CRLF inside a multi-line event", "data: a\r\ndata: b\r\n\r\n", [msg("a\nb")]],
  ["mixed line ends", "data: a\n\ndata: b\r\n\r\ndata: c\r\r", [msg("a"), msg("b"), msg("c")]],
  ["comments", ": ping\n\ndata: x\n: ping\ndata: y\n\n: ping\n\n", [msg("x\ny")]],
  ["multi-line data", "data: {\"a\":\ndata: 1}\n\n", [msg("{\"a\":\n1}")]],
  ["data: without space, only one space removed", "data:tight\ndata:  two\n\n",
    [msg("tight\n two")]],
  ["a field name alone is an empty value", "data\n\n", [msg("")]],
  ["no data, no event; the type does not leak", "event: delta\n\ndata: z\n\n", [msg("z")]],
  ["the id holds until changed", "id: 7\ndata: a\n\ndata: b\n\nid: 8\ndata: c\n\n",
    [msg("a", "7"), msg("b", "7"), msg("c", "8")]],
  ["an unterminated last event is dropped", "data: kept\n\ndata: cut 世界\n", [msg("kept")]],
  ["a last line without its end is dropped", "data: kept\n\ndata: cu", [msg("kept")]],
];

for (const [name, body, expected] of PARSER_CASES) {
  test(`parser, split at every byte: ${name}`, () => {
    for (const chunks of everySplit(encoder.encode(body))) {
      assert.deepEqual(parse(chunks), expected, `chunks: ${chunks.map((c) => c.length)}`);
    }
  });
}

test("parser: a multi-byte character cut off by the end of the body gives nothing", () => {
  const bytes = encoder.encode("data: ok\n\ndata: 👋");
  assert.deepEqual(parse([bytes.subarray(0, bytes.length - 2)]), [msg("ok")]);
});

// ---------------------------------------------------------------- a scripted server

const BASE = "http://sluice.test";
const START_URL = `${BASE}/api/v1/threads/t1/messages/stream`;
const FAST = { baseDelayMs: 1, maxDelayMs: 1000 };

/** One SSE event as the server writes it. */
function sse(seq, type, fields = {}) {
  return `id: ${seq}\nevent: ${type}\ndata: ${JSON.stringify({ type, seq, ...fields })}\n\n`;
}

const start = () => sse(1, "start", { stream_id: "s1", message_id: "m2", thread_id: "t1", model: "demo/echo" });
const delta = (seq, content) => sse(seq, "delta", { content });
const done = (seq) => sse(seq, "done", { status: "complete", finish_reason: "stop", message_id: "m2" });

/**
 * A Response streaming `text` in 5-byte chunks. ending: "close" ends the body cleanly,
 * "error" breaks it like a dropped connection, "hang" keeps it open until aborted.
 */
function streamed(text, { ending = "close" } = {}) {
  return (init) => {
    const bytes = encoder.encode(text);
    let offset = 0;
    const body = new ReadableStream({
      start(controller) {
        init.signal?.addEventListener("abort", () => controller.error(new DOMException("aborted", "AbortError")));
      },
      pull(controller) {
        if (offset < bytes.length) {
          controller.enqueue(bytes.slice(offset, offset + 5));
          offset += 5;
        } else if (ending === "close") controller.close();
        else if (ending === "error") controller.error(new TypeError("network error"));
        else return new Promise(() => {}); // "hang": nothing more, ever
      },
    });
    return new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
  };
}

const jsonAnswer = (status, body) => () => Response.json(body, { status });
const networkDown = () => () => { throw new TypeError("fetch failed"); };

/** A fetch that answers the n-th call with script[n] and records every call. */
function scriptedFetch(script) {
  const calls = [];
  async function fetch(url, init = {}) {
    calls.push({ url, init, headers: new Headers(init.headers) });
    const answer = script[calls.length - 1];
    if (!answer) throw new Error(`unexpected request ${init.method} ${url}`);
    return answer(init);
  }
  return { fetch, calls };
}

/** Handlers that record what a page would show: the events in order, and the text. */
function recorder() {
  const log = { events: [], text: "", resets: 0, reconnects: [] };
  const handlers = {
    onEvent: (type, data) => log.events.push([type, data.seq]),
    onDelta: (data) => { log.text += data.content; },
    onReset: () => { log.resets += 1; log.text = ""; },
    onReconnect: (info) => log.reconnects.push(info),
  };
  return { log, handlers };
}

const body = { content: "Hello?" };

async function waitFor(condition, timeoutMs = 1000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

// ---------------------------------------------------------------- openStream

test("openStream POSTs the message and calls each handler in order with the parsed data", async () => {
  const server = scriptedFetch([streamed(
    start() + sse(2, "message_saved", { message: { id: "m1", role: "user" } }) +
    ": ping\n\n" + sse(3, "reasoning", { content: "hmm" }) + delta(4, "Grüße ") +
    sse(5, "tool_call", { id: "c1", name: "clock", arguments: "{}" }) +
    sse(6, "tool_result", { id: "c1", name: "clock", result: "noon", duration_ms: 3 }) +
    delta(7, "👋🏽") + sse(8, "usage", { input_tokens: 3, output_tokens: 2 }) + done(9))]);
  const calls = [];
  const record = (name) => (data) => calls.push([name, data]);
  const stream = openStream({
    url: START_URL, body, fetch: server.fetch,
    handlers: Object.fromEntries(["onStart", "onMessageSaved", "onDelta", "onReasoning",
      "onToolCall", "onToolResult", "onUsage", "onError", "onDone"].map((n) => [n, record(n)])),
  });

  const result = await stream.done;

  assert.deepEqual(calls.map(([name, data]) => [name, data.seq]), [
    ["onStart", 1], ["onMessageSaved", 2], ["onReasoning", 3], ["onDelta", 4],
    ["onToolCall", 5], ["onToolResult", 6], ["onDelta", 7], ["onUsage", 8], ["onDone", 9]]);
  assert.equal(calls[1][1].message.role, "user");
  assert.equal(calls[6][1].content, "👋🏽");
  assert.deepEqual(result, { type: "done", seq: 9, status: "complete", finish_reason: "stop", message_id: "m2" });
  assert.equal(stream.streamId, "s1");
  assert.equal(stream.lastEventId, 9);
  const [post] = server.calls;
  assert.equal(post.url, START_URL);
  assert.equal(post.init.method, "POST");
  assert.equal(post.headers.get("content-type"), "application/json");
  assert.equal(post.headers.get("accept"), "text/event-stream");
  assert.deepEqual(JSON.parse(post.init.body), body);
});

const status = (seq, stage, message, details = {}) => sse(seq, "status", { stage, message, ...details });
const toolCall = (seq, id, name) => sse(seq, "tool_call", { id, name, arguments: "{}", server: true });
const toolResult = (seq, id, name, result) => sse(seq, "tool_result", { id, name, result, duration_ms: 4 });

test("a status event reaches onStatus with its stage, message and details", async () => {
  const server = scriptedFetch([streamed(start() +
    status(2, "connecting", "Waiting for demo/echo…", { model: "demo/echo" }) +
    status(3, "retrying", "openai/x failed (rate_limited); retrying in 2 s.",
           { attempt: 2, delay: 1.7, reason: "rate_limited", model: "openai/x" }) +
    delta(4, "Hi") + done(5))]);
  const statuses = [];
  const stream = openStream({ url: START_URL, body, fetch: server.fetch,
    handlers: { onStatus: (data) => statuses.push(data) } });
  await stream.done;
  assert.deepEqual(statuses.map((s) => [s.seq, s.stage, s.message]), [
    [2, "connecting", "Waiting for demo/echo…"],
    [3, "retrying", "openai/x failed (rate_limited); retrying in 2 s."]]);
  assert.equal(statuses[1].attempt, 2);
  assert.equal(statuses[1].reason, "rate_limited");
});

/** Handlers that log each status, tool and text event as [type, seq, what]. */
function toolRecorder() {
  const log = [];
  const handlers = {
    onStatus: (data) => log.push(["status", data.seq, data.stage]),
    onToolCall: (data) => log.push(["tool_call", data.seq, data.id]),
    onToolResult: (data) => log.push(["tool_result", data.seq, data.result]),
    onDelta: (data) => log.push(["delta", data.seq, data.content]),
    onReset: () => log.push(["reset"]),
  };
  return { log, handlers };
}

const TOOL_TURN = [
  start(), status(2, "connecting", "Waiting for demo/echo…"), toolCall(3, "c1", "current_time"),
  toolCall(4, "c2", "calculator"), status(5, "tool_running", "Running current_time, calculator…"),
  toolResult(6, "c1", "current_time", "12:00"), toolResult(7, "c2", "calculator", "42"),
  status(8, "step", "Step 2 of at most 8: back to demo/echo."), delta(9, "It is noon; 42."), done(10),
];
const TOOL_TURN_LOG = [
  ["status", 2, "connecting"], ["tool_call", 3, "c1"], ["tool_call", 4, "c2"],
  ["status", 5, "tool_running"], ["tool_result", 6, "12:00"], ["tool_result", 7, "42"],
  ["status", 8, "step"], ["delta", 9, "It is noon; 42."]];

test("a resume delivers the status and tool_result events after the last one seen, in order, once", async () => {
  const server = scriptedFetch([
    // The connection breaks inside the first tool_result; the resume repeats event 5.
    streamed(TOOL_TURN.slice(0, 5).join("") + TOOL_TURN[5].slice(0, 30), { ending: "error" }),
    streamed(TOOL_TURN.slice(4).join("")),
  ]);
  const { log, handlers } = toolRecorder();
  const stream = openStream({ url: START_URL, body, baseUrl: BASE, fetch: server.fetch, handlers, retry: FAST });
  await stream.done;
  assert.equal(server.calls[1].headers.get("last-event-id"), "5");
  assert.deepEqual(log, TOOL_TURN_LOG);
});

test("a replay from the start delivers the status and tool events again after onReset", async () => {
  const server = scriptedFetch([
    streamed(TOOL_TURN.slice(0, 6).join(""), { ending: "error" }),
    streamed(TOOL_TURN.join("")), // the server lost its live log: the stored stream from seq 1
  ]);
  const { log, handlers } = toolRecorder();
  const stream = openStream({ url: START_URL, body, baseUrl: BASE, fetch: server.fetch, handlers, retry: FAST });
  await stream.done;
  assert.deepEqual(log, [...TOOL_TURN_LOG.slice(0, 5), ["reset"], ...TOOL_TURN_LOG]);
});

test("a stream opened by id replays its status and tool events from the given one", async () => {
  const server = scriptedFetch([streamed(TOOL_TURN.slice(3).join(""))]);
  const { log, handlers } = toolRecorder();
  const stream = openStream({ streamId: "s1", lastEventId: 3, baseUrl: BASE, fetch: server.fetch, handlers });
  await stream.done;
  assert.deepEqual(log, TOOL_TURN_LOG.slice(2));
});

test("an error event reaches onError and the stream still ends with done", async () => {
  const server = scriptedFetch([streamed(start() + delta(2, "par") +
    sse(3, "error", { code: "upstream_error", message: "The provider failed.", retryable: true }) +
    sse(4, "done", { status: "error", finish_reason: "error" }))]);
  const errors = [];
  const stream = openStream({ url: START_URL, body, fetch: server.fetch,
    handlers: { onError: (data) => errors.push(data.code) } });
  assert.equal((await stream.done).status, "error");
  assert.deepEqual(errors, ["upstream_error"]);
});

test("lastEventId follows the events as they are handled", async () => {
  const seen = [];
  const server = scriptedFetch([streamed(start() + delta(2, "a") + delta(3, "b") + done(4))]);
  const stream = openStream({ url: START_URL, body, fetch: server.fetch,
    handlers: { onEvent: () => seen.push([stream.streamId, stream.lastEventId]) } });
  await stream.done;
  assert.deepEqual(seen, [["s1", 1], ["s1", 2], ["s1", 3], ["s1", 4]]);
});

test("a dropped connection resumes after the last event, and no text is lost or doubled", async () => {
  const cutMidEvent = delta(5, "wor").slice(0, 20); // the connection breaks inside event 5
  const server = scriptedFetch([
    streamed(start() + delta(2, "Hel") + delta(3, "lo ") + cutMidEvent, { ending: "error" }),
    networkDown(), // the first attempt to resume fails too
    streamed(delta(3, "lo ") + delta(4, "") + delta(5, "wor") + delta(6, "ld")), // repeats 3; ends early
    streamed(delta(6, "ld") + delta(7, "!") + done(8)),
  ]);
  const { log, handlers } = recorder();
  const stream = openStream({ url: START_URL, body, baseUrl: BASE, fetch: server.fetch, handlers, retry: FAST });

  await stream.done;

  assert.equal(log.text, "Hello world!");
  assert.deepEqual(log.events.map(([, seq]) => seq), [1, 2, 3, 4, 5, 6, 7, 8]);
  const resumes = server.calls.slice(1);
  for (const call of resumes) {
    assert.equal(call.url, `${BASE}/api/v1/streams/s1/events`);
    assert.equal(call.init.method, "GET");
  }
  assert.deepEqual(resumes.map((call) => call.headers.get("last-event-id")), ["3", "3", "6"]);
  // Two failures in a row back off 1 ms then 2 ms; events in between start over at 1.
  assert.deepEqual(log.reconnects, [{ attempt: 1, delayMs: 1 }, { attempt: 2, delayMs: 2 }, { attempt: 1, delayMs: 1 }]);
});

test("a stream opened by id resumes at once from the given event", async () => {
  const server = scriptedFetch([streamed(delta(5, "tail") + done(6))]);
  const { log, handlers } = recorder();
  const stream = openStream({ streamId: "s9", lastEventId: 4, baseUrl: BASE, fetch: server.fetch, handlers });
  await stream.done;
  assert.equal(server.calls[0].url, `${BASE}/api/v1/streams/s9/events`);
  assert.equal(server.calls[0].headers.get("last-event-id"), "4");
  assert.equal(log.text, "tail");
});

test("a replay from the start calls onReset and shows the whole answer once", async () => {
  const server = scriptedFetch([
    streamed(start() + delta(2, "Hel") + delta(3, "lo"), { ending: "error" }),
    // The server lost its live log: it replays the stored answer from seq 1.
    streamed(start() + delta(2, "Hello world") + done(3)),
  ]);
  const { log, handlers } = recorder();
  const stream = openStream({ url: START_URL, body, baseUrl: BASE, fetch: server.fetch, handlers, retry: FAST });
  await stream.done;
  assert.equal(log.resets, 1);
  assert.equal(log.text, "Hello world");
  assert.deepEqual(log.events.map(([, seq]) => seq), [1, 2, 3, 1, 2, 3]);
  assert.equal(stream.lastEventId, 3);
});

test("after maxAttempts failed resumes, done rejects with stream_lost", async () => {
  const server = scriptedFetch([streamed(start() + delta(2, "Hi")), networkDown(), networkDown(), networkDown()]);
  const { log, handlers } = recorder();
  const stream = openStream({ url: START_URL, body, baseUrl: BASE, fetch: server.fetch, handlers,
    retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 } });
  await assert.rejects(stream.done, (error) => error.code === "stream_lost");
  assert.equal(server.calls.length, 4);
  assert.deepEqual(log.reconnects.map((r) => r.delayMs), [1, 2, 2]); // capped by maxDelayMs
  assert.equal(log.text, "Hi");
});

test("a resume answered 404 rejects at once", async () => {
  const server = scriptedFetch([
    streamed(start(), { ending: "error" }),
    jsonAnswer(404, { error: { code: "not_found", message: "No such stream." } }),
  ]);
  const stream = openStream({ url: START_URL, body, baseUrl: BASE, fetch: server.fetch, retry: FAST });
  await assert.rejects(stream.done, { status: 404, code: "not_found", message: "No such stream." });
  assert.equal(server.calls.length, 2);
});

test("a resume answered 503 (a restarting server) is tried again", async () => {
  const server = scriptedFetch([
    streamed(start() + delta(2, "Hel"), { ending: "error" }),
    jsonAnswer(503, { error: { code: "unavailable", message: "Restarting." } }),
    streamed(delta(3, "lo") + done(4)),
  ]);
  const { log, handlers } = recorder();
  const stream = openStream({ url: START_URL, body, baseUrl: BASE, fetch: server.fetch, handlers, retry: FAST });
  await stream.done;
  assert.equal(log.text, "Hello");
  assert.equal(server.calls.length, 3);
});

test("an error thrown by a handler rejects done instead of reconnecting", async () => {
  const server = scriptedFetch([streamed(start() + delta(2, "Hi") + done(3))]);
  const stream = openStream({ url: START_URL, body, baseUrl: BASE, fetch: server.fetch, retry: FAST,
    handlers: { onDelta: () => { throw new RangeError("page bug"); } } });
  await assert.rejects(stream.done, RangeError);
  assert.equal(server.calls.length, 1);
});

test("a refused POST rejects with its status and code and is not retried", async () => {
  const server = scriptedFetch([jsonAnswer(400, { error: { code: "invalid_request", message: "content is required" } })]);
  const { log, handlers } = recorder();
  const stream = openStream({ url: START_URL, body: {}, baseUrl: BASE, fetch: server.fetch, handlers, retry: FAST });
  await assert.rejects(stream.done, { status: 400, code: "invalid_request", message: "content is required" });
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(server.calls.length, 1);
  assert.deepEqual(log.reconnects, []);
});

test("stop() cancels on the server, closes the connection and resolves done", async () => {
  const server = scriptedFetch([streamed(start() + delta(2, "Hel"), { ending: "hang" }), jsonAnswer(202, {})]);
  const { log, handlers } = recorder();
  const stream = openStream({ url: START_URL, body, baseUrl: BASE, fetch: server.fetch, handlers, retry: FAST });
  await waitFor(() => log.text === "Hel");

  await stream.stop();

  assert.deepEqual(await stream.done, { status: "cancelled", stopped_by_client: true });
  assert.equal(server.calls[1].url, `${BASE}/api/v1/streams/s1/cancel`);
  assert.equal(server.calls[1].init.method, "POST");
  assert.equal(server.calls[0].init.signal.aborted, true);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(server.calls.length, 2, "no resume after stop()");
  assert.deepEqual(log.reconnects, []);
});

test("stop() after the answer is complete changes nothing", async () => {
  const server = scriptedFetch([streamed(start() + delta(2, "Hi") + done(3))]);
  const stream = openStream({ url: START_URL, body, baseUrl: BASE, fetch: server.fetch });
  await stream.done;
  await stream.stop();
  assert.equal((await stream.done).status, "complete");
  assert.equal(server.calls.length, 1);
});

// ---------------------------------------------------------------- sendMessage

test("sendMessage POSTs JSON and returns the answer", async () => {
  const answer = { message: { id: "m1", role: "user" }, response: { id: "m2", role: "assistant", content: "Hi" } };
  const server = scriptedFetch([jsonAnswer(200, answer)]);
  const url = `${BASE}/api/v1/threads/t1/messages`;
  assert.deepEqual(await sendMessage({ url, body, fetch: server.fetch }), answer);
  assert.equal(server.calls[0].url, url);
  assert.equal(server.calls[0].init.method, "POST");
  assert.equal(server.calls[0].headers.get("content-type"), "application/json");
  assert.deepEqual(JSON.parse(server.calls[0].init.body), body);
});

test("sendMessage throws the server's error with status, code, message and body", async () => {
  const error = { error: { code: "upstream_error", message: "The provider failed." },
    message: { id: "m1" }, response: { id: "m2", status: "error" } };
  const server = scriptedFetch([jsonAnswer(502, error)]);
  await assert.rejects(sendMessage({ url: `${BASE}/x`, body, fetch: server.fetch }),
    { status: 502, code: "upstream_error", message: "The provider failed.", body: error });
});

// ---------------------------------------------------------------- streamingPreference

function memoryStorage() {
  const items = new Map();
  return {
    items,
    getItem: (key) => (items.has(key) ? items.get(key) : null),
    setItem: (key, value) => { items.set(key, String(value)); },
  };
}

test("streaming is on until the user turns it off, and the choice is kept", () => {
  const storage = memoryStorage();
  assert.equal(streamingPreference(storage).get(), true);
  streamingPreference(storage).set(false);
  assert.equal(storage.items.get("sluice.streaming"), "false");
  assert.equal(streamingPreference(storage).get(), false); // as after a reload
  streamingPreference(storage).set(true);
  assert.equal(streamingPreference(storage).get(), true);
});

test("streaming stays on where storage is missing or blocked", () => {
  const blocked = { getItem() { throw new Error("denied"); }, setItem() { throw new Error("denied"); } };
  for (const storage of [undefined, blocked]) {
    const preference = streamingPreference(storage);
    assert.doesNotThrow(() => preference.set(false));
    assert.equal(preference.get(), true);
  }
});

test("options.headers go with the start, every resume and the cancel (a CSRF token, a key)", async () => {
  const server = scriptedFetch([
    streamed(start() + delta(2, "Hel"), { ending: "error" }),
    streamed(delta(3, "lo"), { ending: "hang" }),
    jsonAnswer(202, {}),
  ]);
  const { log, handlers } = recorder();
  const headers = { "X-CSRF-Token": "t0ken" };
  const stream = openStream({ url: START_URL, body, baseUrl: BASE, fetch: server.fetch, handlers,
                              retry: FAST, headers });
  await waitFor(() => log.text === "Hello");

  await stream.stop();

  assert.deepEqual(server.calls.map((call) => call.headers.get("x-csrf-token")), ["t0ken", "t0ken", "t0ken"]);
  assert.equal(server.calls[0].headers.get("content-type"), "application/json");
});

test("sendMessage sends options.headers too", async () => {
  const server = scriptedFetch([jsonAnswer(200, { message: {}, response: {} })]);
  await sendMessage({ url: START_URL, body, fetch: server.fetch, headers: { "X-CSRF-Token": "t0ken" } });
  assert.equal(server.calls[0].headers.get("x-csrf-token"), "t0ken");
});

test("a sources event reaches onSources with the chunks given to the model", async () => {
  const chunk = { document_id: "doc_1", filename: "handbook.md", chunk: 2, score: 1.5, excerpt: "Refunds…" };
  const server = scriptedFetch([streamed(start() +
    status(2, "retrieving", "Searching your documents…") +
    sse(3, "sources", { sources: [chunk] }) + delta(4, "See [1].") + done(5))]);
  const seen = [];
  const stream = openStream({ url: START_URL, body, fetch: server.fetch,
    handlers: { onSources: (data) => seen.push(data) } });
  await stream.done;
  assert.deepEqual(seen.map((data) => [data.seq, data.sources]), [[3, [chunk]]]);
});

const JOB_EVENTS = `${BASE}/api/v1/jobs/job_1/events`;
const indexing = (seq, done, total) => status(seq, "indexing", `Indexed ${done} of ${total} chunks.`,
  { chunks_done: done, chunks_total: total });

test("eventsUrl follows a job's stream by GET and resumes it at the same URL after a drop", async () => {
  const events = [status(1, "queued", "The job was queued."), indexing(2, 1, 3), indexing(3, 3, 3),
    sse(4, "done", { status: "complete", document: { id: "doc_1", status: "ready" } })];
  const server = scriptedFetch([
    streamed(events.slice(0, 2).join(""), { ending: "error" }),
    streamed(events.slice(1).join("")), // the resume repeats event 2: handled once
  ]);
  const seen = [];
  const stream = openStream({ eventsUrl: JOB_EVENTS, fetch: server.fetch, retry: FAST,
    headers: { "X-CSRF-Token": "t" }, handlers: { onStatus: (data) => seen.push(data.seq) } });
  const result = await stream.done;
  assert.deepEqual(seen, [1, 2, 3]);
  assert.equal(result.document.status, "ready");
  assert.deepEqual(server.calls.map((c) => [c.url, c.init.method, c.headers.get("last-event-id")]),
    [[JOB_EVENTS, "GET", "0"], [JOB_EVENTS, "GET", "2"]]);
  assert.equal(server.calls[1].headers.get("x-csrf-token"), "t");
});

test("eventsUrl answered 204 (over, nothing left to read) ends without a done event", async () => {
  const server = scriptedFetch([() => new Response(null, { status: 204 })]);
  const stream = openStream({ eventsUrl: JOB_EVENTS, fetch: server.fetch });
  assert.deepEqual(await stream.done, { status: "ended", no_done_event: true });
});

// ---------------------------------------------------------------- the WebSocket mode

/**
 * A stand-in for a Socket.IO client socket: records what the page emits (with its
 * acknowledgement callback, which the test calls as the server would), lets the test
 * push the server's events, and drops and restores the connection.
 */
function fakeSocket() {
  const listeners = new Map(); // event → Set of listeners
  const sent = [];
  return {
    sent,
    active: true,
    on(event, listener) {
      if (!listeners.has(event)) listeners.set(event, new Set());
      listeners.get(event).add(listener);
    },
    off(event, listener) {
      listeners.get(event)?.delete(listener);
    },
    emit(event, data, ack) {
      sent.push({ event, data, ack });
    },
    /** The server emits `event` to this socket (or the client library emits connect …). */
    receive(event, data) {
      for (const listener of [...(listeners.get(event) ?? [])]) listener(data);
    },
    drop() { this.receive("disconnect", "transport close"); },
    reconnect() { this.receive("connect"); },
    listenerCount() {
      return [...listeners.values()].reduce((sum, set) => sum + set.size, 0);
    },
    last(event) { return sent.filter((s) => s.event === event).at(-1); },
  };
}

const wsEvent = (seq, type, fields = {}, streamId = "s1") => ({ type, seq, ...fields, stream_id: streamId });
const wsDelta = (seq, content, streamId) => wsEvent(seq, "delta", { content }, streamId);
const wsDone = (seq, streamId) => wsEvent(seq, "done", { status: "complete", message_id: "m2" }, streamId);
const sendRequest = { event: "send_message", data: { thread_id: "t1", content: "Hello?" } };

function socketStream(socket, extra = {}) {
  const { log, handlers } = recorder();
  const stream = openStream({ transport: "websocket", socket, request: sendRequest, handlers, ...extra });
  return { stream, log };
}

test("websocket: emits the request, takes its stream's events and resolves with done", async () => {
  const socket = fakeSocket();
  const { stream, log } = socketStream(socket);
  const [request] = socket.sent;
  assert.equal(request.event, "send_message");
  assert.deepEqual(request.data, sendRequest.data);
  request.ack({ stream_id: "s1" });
  socket.receive("stream_event", wsEvent(1, "start", { message_id: "m2" }));
  socket.receive("stream_event", wsDelta(2, "Grüße "));
  socket.receive("stream_event", wsDelta(3, "👋🏽"));
  socket.receive("stream_event", wsDone(4));
  const result = await stream.done;
  assert.equal(result.status, "complete");
  assert.equal(log.text, "Grüße 👋🏽");
  assert.deepEqual(log.events, [["start", 1], ["delta", 2], ["delta", 3], ["done", 4]]);
  assert.equal(stream.streamId, "s1");
  assert.equal(stream.lastEventId, 4);
});

test("websocket: events that overtake the acknowledgement are kept, others' dropped", async () => {
  const socket = fakeSocket();
  const { stream, log } = socketStream(socket);
  socket.receive("stream_event", wsDelta(2, "other", "s9"));
  socket.receive("stream_event", wsEvent(1, "start"));
  socket.sent[0].ack({ stream_id: "s1" });
  socket.receive("stream_event", wsDelta(2, "mine"));
  socket.receive("stream_event", wsDone(3));
  await stream.done;
  assert.equal(log.text, "mine");
});

test("websocket: a refusal in the acknowledgement rejects done with its code and status", async () => {
  const socket = fakeSocket();
  const { stream } = socketStream(socket);
  socket.sent[0].ack({ error: { code: "thread_not_found", message: "No such thread.", status: 404 } });
  await assert.rejects(stream.done, { code: "thread_not_found", status: 404, message: "No such thread." });
  assert.equal(socket.listenerCount(), 0);
});

test("websocket: events of other streams on the same socket are ignored", async () => {
  const socket = fakeSocket();
  const { stream, log } = socketStream(socket);
  socket.sent[0].ack({ stream_id: "s1" });
  socket.receive("stream_event", wsDelta(1, "not mine", "s2"));
  socket.receive("stream_event", wsDelta(1, "mine"));
  socket.receive("stream_event", wsDone(5, "s2"));
  socket.receive("stream_event", wsDelta(2, "!"));
  socket.receive("stream_event", wsDone(3));
  await stream.done;
  assert.equal(log.text, "mine!");
});

test("websocket: after a reconnect it subscribes from the last seq and drops repeats", async () => {
  const socket = fakeSocket();
  const { stream, log } = socketStream(socket);
  socket.sent[0].ack({ stream_id: "s1" });
  socket.receive("stream_event", wsEvent(1, "start"));
  socket.receive("stream_event", wsDelta(2, "Hel"));
  socket.drop();
  socket.reconnect();
  const subscribe = socket.last("subscribe");
  assert.deepEqual(subscribe.data, { stream_id: "s1", after: 2 });
  subscribe.ack({ stream_id: "s1" });
  socket.receive("stream_event", wsDelta(2, "Hel")); // a repeat: handled once
  socket.receive("stream_event", wsDelta(3, "lo"));
  socket.receive("stream_event", wsDone(4));
  await stream.done;
  assert.equal(log.text, "Hello");
  assert.equal(socket.sent.filter((s) => s.event === "subscribe").length, 1);
});

test("websocket: a replay from seq 1 after a reconnect resets the answer", async () => {
  const socket = fakeSocket();
  const { stream, log } = socketStream(socket);
  socket.sent[0].ack({ stream_id: "s1" });
  socket.receive("stream_event", wsEvent(1, "start"));
  socket.receive("stream_event", wsDelta(2, "Hel"));
  socket.drop();
  socket.reconnect();
  socket.last("subscribe").ack({ stream_id: "s1" });
  socket.receive("stream_event", wsEvent(1, "start"));
  socket.receive("stream_event", wsDelta(2, "Hello"));
  socket.receive("stream_event", wsDone(3));
  await stream.done;
  assert.equal(log.resets, 1);
  assert.equal(log.text, "Hello");
});

test("websocket: a drop before the acknowledgement rejects with stream_lost", async () => {
  const socket = fakeSocket();
  const { stream } = socketStream(socket);
  socket.drop();
  await assert.rejects(stream.done, { code: "stream_lost" });
});

test("websocket: a socket closed for good (not to reconnect) rejects with stream_lost", async () => {
  const socket = fakeSocket();
  const { stream } = socketStream(socket);
  socket.sent[0].ack({ stream_id: "s1" });
  socket.active = false;
  socket.receive("disconnect", "io server disconnect");
  await assert.rejects(stream.done, { code: "stream_lost" });
  assert.equal(socket.listenerCount(), 0);
});

test("websocket: a resume subscribes from lastEventId; 'ended' resolves without done", async () => {
  const socket = fakeSocket();
  const stream = openStream({ transport: "websocket", socket, streamId: "s1", lastEventId: 7 });
  const [subscribe] = socket.sent;
  assert.equal(subscribe.event, "subscribe");
  assert.deepEqual(subscribe.data, { stream_id: "s1", after: 7 });
  subscribe.ack({ stream_id: "s1", ended: true });
  assert.deepEqual(await stream.done, { status: "ended", no_done_event: true });
  assert.equal(socket.listenerCount(), 0);
});

test("websocket: stop() emits cancel, stops listening and resolves done", async () => {
  const socket = fakeSocket();
  const { stream, log } = socketStream(socket);
  socket.sent[0].ack({ stream_id: "s1" });
  socket.receive("stream_event", wsDelta(1, "Hi"));
  const stopping = stream.stop();
  const cancel = socket.last("cancel");
  assert.deepEqual(cancel.data, { stream_id: "s1" });
  cancel.ack({ stream_id: "s1", status: "cancelling" });
  await stopping;
  socket.receive("stream_event", wsDelta(2, " more"));
  assert.deepEqual(await stream.done, { status: "cancelled", stopped_by_client: true });
  assert.equal(log.text, "Hi");
  assert.equal(socket.listenerCount(), 0);
});

test("websocket: stop() before the acknowledgement cancels the stream once its id is known", async () => {
  const socket = fakeSocket();
  const { stream } = socketStream(socket);
  await stream.stop();
  assert.equal(socket.last("cancel"), undefined);
  socket.sent[0].ack({ stream_id: "s1" });
  assert.deepEqual(socket.last("cancel").data, { stream_id: "s1" });
  assert.deepEqual(await stream.done, { status: "cancelled", stopped_by_client: true });
});

test("websocket: many answers on one socket leave no listeners behind", async () => {
  const socket = fakeSocket();
  for (let i = 1; i <= 20; i++) {
    const { stream } = socketStream(socket);
    socket.last("send_message").ack({ stream_id: `s${i}` });
    socket.receive("stream_event", wsDone(1, `s${i}`));
    await stream.done;
  }
  assert.equal(socket.listenerCount(), 0);
});

test("websocket: an error thrown by a handler rejects done and stops listening", async () => {
  const socket = fakeSocket();
  const stream = openStream({ transport: "websocket", socket, request: sendRequest,
    handlers: { onDelta: () => { throw new Error("page bug"); } } });
  socket.sent[0].ack({ stream_id: "s1" });
  socket.receive("stream_event", wsDelta(1, "x"));
  await assert.rejects(stream.done, { message: "page bug" });
  assert.equal(socket.listenerCount(), 0);
});

test("websocket: a job's progress events, then its final job, resolve done", async () => {
  const socket = fakeSocket();
  const seen = [];
  const stream = openStream({ transport: "websocket", socket, jobId: "job_1",
    handlers: { onStatus: (data) => seen.push(data.seq) } });
  const subscribe = socket.last("subscribe");
  assert.deepEqual(subscribe.data, { job_id: "job_1", after: 0 });
  subscribe.ack({ job_id: "job_1" });
  const progress = (seq, fields) => ({ type: "status", seq, stage: "indexing", ...fields, job_id: "job_1", stream_id: "s7" });
  socket.receive("job_progress", progress(1));
  socket.receive("job_progress", { ...progress(1), job_id: "job_2" }); // another job's
  socket.receive("stream_event", wsEvent(2, "status", {}, "s7")); // the job's stream, not as job_progress
  socket.drop();
  socket.reconnect();
  assert.deepEqual(socket.last("subscribe").data, { job_id: "job_1", after: 1 });
  socket.receive("job_progress", progress(1)); // a repeat
  socket.receive("job_progress", progress(2));
  const job = { id: "job_1", status: "succeeded" };
  socket.receive("job_progress", { type: "job", job_id: "job_1", job });
  assert.deepEqual(await stream.done, { status: "ended", job });
  assert.deepEqual(seen, [1, 2]);
  assert.equal(socket.listenerCount(), 0);
});

test("websocket: a connection the server refuses rejects done with its code", async () => {
  const socket = fakeSocket();
  const { stream } = socketStream(socket);
  socket.active = false;
  const error = new Error("unauthorized");
  error.data = { code: "unauthorized", message: "Sign in first." };
  socket.receive("connect_error", error);
  await assert.rejects(stream.done, { code: "unauthorized", message: "Sign in first." });
});

test("the transport is SSE until the user chooses WebSocket, and the choice is kept", () => {
  const store = new Map();
  const storage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v) };
  assert.equal(transportPreference(storage).get(), "sse");
  transportPreference(storage).set("websocket");
  assert.equal(transportPreference(storage).get(), "websocket");
  transportPreference(storage).set("carrier pigeon");
  assert.equal(transportPreference(storage).get(), "sse");
  const blocked = { getItem() { throw new Error("denied"); }, setItem() { throw new Error("denied"); } };
  assert.equal(transportPreference(blocked).get(), "sse");
  transportPreference(blocked).set("websocket"); // no throw
});
