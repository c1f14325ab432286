/**
 * sluice-stream.js — watch a Sluice answer arrive, token by token, from your own page.
 *
 * One dependency-free ES module for browsers and Node 20. It POSTs a message to a
 * `…/messages/stream` endpoint, reads the Server-Sent Events that come back (the README
 * lists them) and calls your handlers with each event's parsed JSON. If the connection
 * drops before the answer is finished, it picks up where it broke off with
 * `GET /api/v1/streams/<stream_id>/events` and `Last-Event-ID`, so you see every piece
 * of text exactly once. `stop()` cancels the answer on the server too.
 *
 *   import { openStream } from "/static/js/sluice-stream.js";
 *
 *   const answer = document.querySelector("#answer");
 *   const stream = openStream({
 *     url: `/api/v1/threads/${threadId}/messages/stream`,
 *     body: { content: "Write a haiku about rivers" },
 *     handlers: {
 *       onDelta: (data) => { answer.textContent += data.content; },
 *       onReset: () => { answer.textContent = ""; },  // the server replays from the start
 *       onStatus: (data) => { statusLine.textContent = data.message; },  // "Retrying in 2 s…"
 *       onError: (data) => console.warn(data.code, data.message),
 *     },
 *   });
 *   stopButton.onclick = () => stream.stop();
 *   const done = await stream.done;  // {status: "complete", finish_reason: "stop", usage, …}
 *
 * `options.headers` are added to every request it makes: with SLUICE_AUTH=on a page
 * signed in with its session cookie passes `{"X-CSRF-Token": token}`, a program its
 * `{Authorization: "Bearer sk-sluice-…"}`.
 *
 * `options.eventsUrl` follows an event stream that already exists with GET instead (a
 * job's `/api/v1/jobs/<id>/events`): after a drop the same URL is asked again with
 * `Last-Event-ID`, and a `204` (the stream is over and nothing is left to read) resolves
 * `done` with `{status: "ended", no_done_event: true}`.
 *
 * `stream.done` rejects with an Error carrying `.status` and `.code` when the server
 * refuses the request (unknown thread, bad body), and with code
 * "stream_lost" when every attempt to reconnect failed. Also exported: `sendMessage`
 * (the same request without streaming), `streamingPreference` (the user's on/off
 * choice, kept in localStorage) and `createEventParser` (the bare SSE parser).
 */

const DEFAULT_RETRY = { maxAttempts: 8, baseDelayMs: 500, maxDelayMs: 8000 };

const HANDLER_FOR_TYPE = {
  start: "onStart",
  message_saved: "onMessageSaved",
  delta: "onDelta",
  reasoning: "onReasoning",
  status: "onStatus",
  sources: "onSources",
  tool_call: "onToolCall",
  tool_result: "onToolResult",
  usage: "onUsage",
  error: "onError",
  done: "onDone",
};

const PREFERENCE_KEY = "sluice.streaming";

/**
 * An SSE parser fed with bytes as they arrive, split anywhere. Calls
 * onEvent({id, event, data}) for each complete event, following the rules of the
 * HTML standard's "event stream interpretation". An event the stream ends in the
 * middle of is never dispatched: half an event is worse than none.
 */
export function createEventParser(onEvent) {
  const decoder = new TextDecoder(); // strips a leading BOM, as the standard asks
  let buffer = "";
  let endedWithCR = false; // a CR ended the last text; an LF right after it is the same line end
  let lastEventId = null; // per the standard, an id holds for later events until changed
  let eventType = "";
  let dataLines = [];

  function processLine(line) {
    if (line === "") return dispatch();
    if (line.startsWith(":")) return; // a comment, such as the server's ": ping"
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") eventType = value;
    else if (field === "data") dataLines.push(value);
    else if (field === "id" && !value.includes("\0")) lastEventId = value;
    // "retry" and unknown fields are ignored: reconnecting is openStream's business.
  }

  function dispatch() {
    const event = { id: lastEventId, event: eventType || "message", data: dataLines.join("\n") };
    const hasData = dataLines.length > 0;
    eventType = "";
    dataLines = [];
    if (hasData) onEvent(event);
  }

  function processText(text) {
    buffer += text;
    if (buffer === "") return; // e.g. only the first bytes of a multi-byte character arrived
    if (endedWithCR && buffer.startsWith("\n")) buffer = buffer.slice(1);
    endedWithCR = false;
    const lineEnd = /\r\n|\r|\n/g;
    let start = 0;
    for (let match; (match = lineEnd.exec(buffer)); start = lineEnd.lastIndex) {
      // A CR as the last character may be half of a CRLF whose LF is in the next chunk.
      endedWithCR = match[0] === "\r" && lineEnd.lastIndex === buffer.length;
      processLine(buffer.slice(start, match.index));
    }
    buffer = buffer.slice(start);
  }

  return {
    push(chunk) {
      processText(decoder.decode(chunk, { stream: true }));
    },
    end() {
      processText(decoder.decode()); // flush the decoder; an unfinished line stays unused
      buffer = "";
      dataLines = [];
    },
  };
}

/** A reason to reconnect (the network, not the server's answer): the only errors retried. */
class ConnectionLost extends Error {
  constructor(cause) {
    super("connection lost", { cause });
  }
}

/** The Error for an HTTP error answer: `.status`, `.code`, `.message` from its JSON body. */
async function httpError(response) {
  const body = await response.json().catch(() => null);
  const detail = (body && body.error) || {};
  const error = new Error(detail.message || `HTTP ${response.status}`);
  error.status = response.status;
  error.code = detail.code || "http_error";
  error.body = body;
  return error;
}

function streamLost(message, cause) {
  const error = new Error(message, { cause });
  error.code = "stream_lost";
  return error;
}

/** Waits ms milliseconds, or less if the signal aborts: stop() must not wait out a backoff. */
function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

/**
 * Starts (options.url + options.body), resumes (options.streamId + lastEventId) or
 * follows (options.eventsUrl) a stream and calls options.handlers for each new event. Returns
 * { done, stop(), streamId, lastEventId }; see the comment at the top of this file.
 */
export function openStream(options) {
  const { baseUrl = "", handlers = {}, fetch: fetchImpl = globalThis.fetch } = options;
  const extraHeaders = options.headers ?? {};
  const retry = { ...DEFAULT_RETRY, ...options.retry };
  const controller = new AbortController();
  let streamId = options.streamId ?? null;
  let lastEventId = Number(options.lastEventId ?? 0);
  let finished = false; // a done event arrived
  let stopped = false; // stop() was called
  let attempt = 0;
  let resolveDone, rejectDone;
  const done = new Promise((resolve, reject) => { resolveDone = resolve; rejectDone = reject; });

  async function request(url, init) {
    let response;
    try {
      response = await fetchImpl(url, { ...init, signal: controller.signal });
    } catch (error) {
      throw new ConnectionLost(error);
    }
    if (response.ok) return response;
    const error = await httpError(response);
    // A resume that meets a busy or restarting server is worth another try; a refusal is not.
    const retryable = init.method === "GET" && (response.status >= 500 || response.status === 429);
    throw retryable ? new ConnectionLost(error) : error;
  }

  function startRequest() {
    return request(options.url, {
      method: "POST",
      headers: { ...extraHeaders, "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify(options.body),
    });
  }

  function resumeRequest() {
    const url = options.eventsUrl ?? `${baseUrl}/api/v1/streams/${encodeURIComponent(streamId)}/events`;
    return request(url, {
      method: "GET",
      headers: { ...extraHeaders, Accept: "text/event-stream", "Last-Event-ID": String(lastEventId) },
    });
  }

  function handleEvent(message) {
    if (finished || stopped) return;
    attempt = 0; // the connection works again
    let data;
    try {
      data = JSON.parse(message.data);
    } catch {
      return; // not one of Sluice's events (every one is JSON); nothing to show
    }
    const type = data.type || message.event;
    const seq = Number(data.seq ?? message.id);
    if (type === "start" && seq === 1 && lastEventId > 0) {
      // The server lost its live log and replays the stored answer from the beginning.
      lastEventId = 0;
      handlers.onReset?.();
    } else if (seq <= lastEventId) {
      return; // already handled before the connection dropped
    }
    if (Number.isFinite(seq)) lastEventId = seq;
    if (type === "start" && data.stream_id) streamId = data.stream_id;
    if (type === "done") finished = true;
    handlers.onEvent?.(type, data);
    handlers[HANDLER_FOR_TYPE[type]]?.(data);
    if (type === "done") resolveDone(data);
  }

  /** Reads one response until done or until it ends; an error of a handler is not caught. */
  async function readEvents(response) {
    if (response.status === 204) {
      // Over, and nothing left to read: a stream followed by URL ends here, without done.
      finished = true;
      resolveDone({ status: "ended", no_done_event: true });
      return;
    }
    if (!response.body) return;
    const parser = createEventParser(handleEvent);
    const reader = response.body.getReader();
    while (!finished && !stopped) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (error) {
        throw new ConnectionLost(error);
      }
      if (chunk.done) return parser.end();
      parser.push(chunk.value);
    }
    await reader.cancel().catch(() => {}); // done has arrived: close the connection
  }

  async function run() {
    let nextRequest = options.url ? startRequest : resumeRequest;
    let lastError = null;
    for (;;) {
      try {
        await readEvents(await nextRequest());
      } catch (error) {
        if (!(error instanceof ConnectionLost)) throw error;
        lastError = error.cause;
      }
      if (finished || stopped) return;
      if (streamId === null && !options.eventsUrl) throw streamLost("connection lost before the stream started", lastError);
      attempt += 1;
      if (attempt > retry.maxAttempts) {
        throw streamLost(`connection lost; gave up after ${retry.maxAttempts} attempts`, lastError);
      }
      const delayMs = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (attempt - 1));
      handlers.onReconnect?.({ attempt, delayMs });
      await sleep(delayMs, controller.signal);
      if (stopped) return;
      nextRequest = resumeRequest;
    }
  }

  async function stop() {
    if (finished || stopped) return;
    stopped = true;
    if (streamId !== null) {
      // Closing the connection alone would not stop the answer: the server keeps
      // generating for a reader that may come back. Only cancel stops it.
      const url = `${baseUrl}/api/v1/streams/${encodeURIComponent(streamId)}/cancel`;
      try {
        await fetchImpl(url, { method: "POST", headers: extraHeaders });
      } catch {
        // The server may be out of reach; this page stops reading all the same.
      }
    }
    controller.abort();
    resolveDone({ status: "cancelled", stopped_by_client: true }); // no-op if done came first
  }

  run().catch((error) => {
    controller.abort(); // a refused request or a failing handler: close the connection
    rejectDone(error); // a no-op if done was already settled
  });

  return {
    done,
    stop,
    get streamId() { return streamId; },
    get lastEventId() { return lastEventId; },
  };
}

/** The non-streaming path: POST the message, get {message, response} as JSON. */
export async function sendMessage({ url, body, headers = {}, fetch: fetchImpl = globalThis.fetch }) {
  const response = await fetchImpl(url, {
    method: "POST",
    headers: { ...headers, "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw await httpError(response);
  return response.json();
}

/** localStorage, or undefined where reading it throws (some browsers' private modes). */
function defaultStorage() {
  try {
    return globalThis.localStorage;
  } catch {
    return undefined;
  }
}

/** The user's choice between streamed and whole answers; streaming unless they turned it off. */
export function streamingPreference(storage = defaultStorage()) {
  return {
    get() {
      try {
        return storage?.getItem(PREFERENCE_KEY) !== "false";
      } catch {
        return true;
      }
    },
    set(on) {
      try {
        storage?.setItem(PREFERENCE_KEY, on ? "true" : "false");
      } catch {
        // Storage full or blocked: the choice lasts for this page only, which is fine.
      }
    },
  };
}
