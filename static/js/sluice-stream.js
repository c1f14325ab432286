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
 * "stream_lost" when every attempt to reconnect failed.
 *
 * WebSocket mode: `transport: "websocket"` with a connected-or-connecting Socket.IO
 * `socket` that you open (this module imports nothing; one socket carries any number of
 * streams). Same handlers, same `{done, stop(), streamId, lastEventId}`. Say what to
 * follow with `request` (starts one: `send_message` or `run_operation`), `streamId` (+
 * `lastEventId`, resumes) or `jobId` (a job's `job_progress` events; its final
 * `{type: "job"}` resolves `done` with `{status: "ended", job}` when no done came).
 * After the socket reconnects it subscribes again from `lastEventId`; the socket's own
 * reconnection settings decide how long that is tried.
 *
 *   import { io } from "/static/vendor/socket.io/socket.io.esm.min.js";
 *   const socket = io({ transports: ["websocket"] });  // or auth: {api_key: "sk-sluice-…"}
 *   const stream = openStream({
 *     transport: "websocket", socket,
 *     request: { event: "send_message", data: { thread_id: threadId, content: "Hi" } },
 *     handlers: { onDelta: (data) => { answer.textContent += data.content; } },
 *   });
 *
 * Also exported: `sendMessage` (the same request without streaming),
 * `streamingPreference` and `transportPreference` (the user's on/off and SSE/WebSocket
 * choices, kept in localStorage) and `createEventParser` (the bare SSE parser).
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
  job: "onJob", // WebSocket mode: the job as it ended, after its stream's events
};

const PREFERENCE_KEY = "sluice.streaming";
const TRANSPORT_KEY = "sluice.transport";
const CANCEL_TIMEOUT_MS = 5000;

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
 * What both transports share: the stream's id and last seq, the handlers, and `done`.
 * `accept` is the one place an event becomes handler calls: it drops what was already
 * seen (by seq) and turns a replay from seq 1 into onReset.
 */
class StreamProgress {
  constructor(options) {
    this.handlers = options.handlers ?? {};
    this.streamId = options.streamId ?? null;
    this.lastEventId = Number(options.lastEventId ?? 0);
    this.finished = false; // done arrived, or the stream ended without one
    this.stopped = false; // stop() was called
    this.done = new Promise((resolve, reject) => { this.resolveDone = resolve; this.rejectDone = reject; });
  }

  get over() {
    return this.finished || this.stopped;
  }

  /** Hands one event's data to the handlers unless it came before; true if it was new. */
  accept(type, data, seq) {
    if (this.over) return false;
    if (type === "start" && seq === 1 && this.lastEventId > 0) {
      // The server lost its live log and replays the stored answer from the beginning.
      this.lastEventId = 0;
      this.handlers.onReset?.();
    } else if (seq <= this.lastEventId) {
      return false; // already handled before the connection dropped
    }
    if (Number.isFinite(seq)) this.lastEventId = seq;
    if (type === "start" && data.stream_id) this.streamId = data.stream_id;
    if (type === "done") this.finished = true;
    this.handlers.onEvent?.(type, data);
    this.handlers[HANDLER_FOR_TYPE[type]]?.(data);
    if (type === "done") this.resolveDone(data);
    return true;
  }

  /** Over without a done event (a followed stream that had ended, a job). */
  end(result) {
    this.finished = true;
    this.resolveDone(result);
  }

  /** Marks the stream stopped by us; true the first time only. */
  stop() {
    if (this.over) return false;
    this.stopped = true;
    return true;
  }

  /** What openStream returns: `done`, `stop` and the live stream id and seq. */
  handle(stop) {
    const progress = this;
    return {
      done: this.done,
      stop,
      get streamId() { return progress.streamId; },
      get lastEventId() { return progress.lastEventId; },
    };
  }
}

/** What `done` resolves with after stop(), in both modes. */
const stoppedByClient = () => ({ status: "cancelled", stopped_by_client: true });

/**
 * Starts (options.url + options.body), resumes (options.streamId + lastEventId) or
 * follows (options.eventsUrl) a stream and calls options.handlers for each new event;
 * with `transport: "websocket"`, the same over a Socket.IO socket. Returns
 * { done, stop(), streamId, lastEventId }; see the comment at the top of this file.
 */
export function openStream(options) {
  return options.transport === "websocket" ? openSocketStream(options) : openEventStream(options);
}

/** The SSE mode: fetch and read the response's body, reconnecting with Last-Event-ID. */
function openEventStream(options) {
  const { baseUrl = "", handlers = {}, fetch: fetchImpl = globalThis.fetch } = options;
  const extraHeaders = options.headers ?? {};
  const retry = { ...DEFAULT_RETRY, ...options.retry };
  const controller = new AbortController();
  const progress = new StreamProgress(options);
  let attempt = 0;

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
    const url = options.eventsUrl ?? `${baseUrl}/api/v1/streams/${encodeURIComponent(progress.streamId)}/events`;
    return request(url, {
      method: "GET",
      headers: { ...extraHeaders, Accept: "text/event-stream", "Last-Event-ID": String(progress.lastEventId) },
    });
  }

  function handleEvent(message) {
    if (progress.over) return;
    attempt = 0; // the connection works again
    let data;
    try {
      data = JSON.parse(message.data);
    } catch {
      return; // not one of Sluice's events (every one is JSON); nothing to show
    }
    progress.accept(data.type || message.event, data, Number(data.seq ?? message.id));
  }

  /** Reads one response until done or until it ends; an error of a handler is not caught. */
  async function readEvents(response) {
    if (response.status === 204) {
      // Over, and nothing left to read: a stream followed by URL ends here, without done.
      progress.end({ status: "ended", no_done_event: true });
      return;
    }
    if (!response.body) return;
    const parser = createEventParser(handleEvent);
    const reader = response.body.getReader();
    while (!progress.over) {
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
      if (progress.over) return;
      if (progress.streamId === null && !options.eventsUrl) throw streamLost("connection lost before the stream started", lastError);
      attempt += 1;
      if (attempt > retry.maxAttempts) {
        throw streamLost(`connection lost; gave up after ${retry.maxAttempts} attempts`, lastError);
      }
      const delayMs = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (attempt - 1));
      handlers.onReconnect?.({ attempt, delayMs });
      await sleep(delayMs, controller.signal);
      if (progress.stopped) return;
      nextRequest = resumeRequest;
    }
  }

  async function stop() {
    if (!progress.stop()) return;
    if (progress.streamId !== null) {
      // Closing the connection alone would not stop the answer: the server keeps
      // generating for a reader that may come back. Only cancel stops it.
      const url = `${baseUrl}/api/v1/streams/${encodeURIComponent(progress.streamId)}/cancel`;
      try {
        await fetchImpl(url, { method: "POST", headers: extraHeaders });
      } catch {
        // The server may be out of reach; this page stops reading all the same.
      }
    }
    controller.abort();
    progress.resolveDone(stoppedByClient()); // no-op if done came first
  }

  run().catch((error) => {
    controller.abort(); // a refused request or a failing handler: close the connection
    progress.rejectDone(error); // a no-op if done was already settled
  });

  return progress.handle(stop);
}

/** The Error for a refusal in an acknowledgement ({error: {code, message, status}}). */
function ackError(ack) {
  const detail = ack.error ?? {};
  const error = new Error(detail.message || "refused");
  error.status = detail.status;
  error.code = detail.code || "refused";
  error.body = ack;
  return error;
}

/**
 * The WebSocket mode: emit the request (or subscribe), then take this stream's events
 * (or job's) from a socket that carries many, subscribing again after a reconnect.
 */
function openSocketStream(options) {
  const { socket } = options;
  const progress = new StreamProgress(options);
  const jobId = options.jobId ?? null;
  const eventName = jobId ? "job_progress" : "stream_event";
  // Until the start request is acknowledged we do not know our stream's id; its first
  // events could overtake the acknowledgement, so they wait here.
  let unclaimed = options.request ? [] : null;
  let disconnected = false;

  function fail(error) {
    finish();
    progress.rejectDone(error); // a no-op if done was already settled
  }

  /** Hands over one event; a handler's exception ends the stream, as in the SSE mode. */
  function deliver(data) {
    try {
      progress.accept(data.type, data, Number(data.seq));
      if (data.type === "job") progress.end({ status: "ended", job: data.job });
    } catch (error) {
      fail(error);
    }
    if (progress.over) finish();
  }

  const listeners = {
    [eventName](data) {
      if (!data) return;
      if (unclaimed) unclaimed.push(data);
      else if (jobId ? data.job_id === jobId : data.stream_id === progress.streamId) deliver(data);
    },
    disconnect(reason) {
      disconnected = true;
      // The request may or may not have reached the server: nothing to resume from.
      if (unclaimed) fail(streamLost("connection lost before the stream started"));
      // Closed on purpose (by the server or the page): the socket will not come back.
      else if (socket.active === false) fail(streamLost(`socket closed (${reason})`));
    },
    connect() {
      if (!disconnected) return; // the first connect of a socket opened with this stream
      disconnected = false;
      subscribe(); // the server forgot our subscription with the old connection
    },
    connect_error(error) {
      // An active socket tries again by itself; an inactive one was refused for good.
      if (socket.active !== false) return;
      const detail = error?.data ?? {};
      const refused = new Error(detail.message || error?.message || "connection refused");
      refused.code = detail.code || "connection_refused";
      refused.status = detail.status;
      fail(refused);
    },
  };
  for (const [event, listener] of Object.entries(listeners)) socket.on(event, listener);

  function finish() {
    for (const [event, listener] of Object.entries(listeners)) socket.off(event, listener);
  }

  /** Emits with an acknowledgement; refusals reject done, nothing happens once over. */
  function emit(event, data, onAck) {
    socket.emit(event, data, (ack = {}) => {
      if (progress.over) return;
      if (ack.error) fail(ackError(ack));
      else onAck(ack);
    });
  }

  function subscribe() {
    const target = jobId ? { job_id: jobId } : { stream_id: progress.streamId };
    emit("subscribe", { ...target, after: progress.lastEventId }, (ack) => {
      if (ack.ended) {
        finish();
        progress.end({ status: "ended", no_done_event: true });
      }
    });
  }

  function start() {
    const { event, data } = options.request;
    socket.emit(event, data, (ack = {}) => {
      const waiting = unclaimed ?? [];
      unclaimed = null;
      if (ack.stream_id && progress.stopped) cancel(ack.stream_id); // stop() came first
      if (progress.over) return;
      if (ack.error) return fail(ackError(ack));
      progress.streamId = ack.stream_id ?? null;
      for (const data of waiting) if (data.stream_id === progress.streamId) deliver(data);
    });
  }

  /** Asks the server to cancel; resolves with its answer, or null if none came in time. */
  function cancel(streamId) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(null), options.cancelTimeoutMs ?? CANCEL_TIMEOUT_MS);
      socket.emit("cancel", { stream_id: streamId }, (ack) => { clearTimeout(timer); resolve(ack); });
    });
  }

  async function stop() {
    if (!progress.stop()) return;
    finish();
    // Without a stream id yet, the start's acknowledgement cancels it when it comes.
    if (progress.streamId !== null) await cancel(progress.streamId);
    progress.resolveDone(stoppedByClient()); // no-op if done came first
  }

  if (options.request) start();
  else subscribe();
  return progress.handle(stop);
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

/** A stored setting's value, or undefined where storage is missing or blocked. */
function readSetting(storage, key) {
  try {
    return storage?.getItem(key) ?? undefined;
  } catch {
    return undefined;
  }
}

function writeSetting(storage, key, value) {
  try {
    storage?.setItem(key, value);
  } catch {
    // Storage full or blocked: the choice lasts for this page only, which is fine.
  }
}

/** The user's choice between streamed and whole answers; streaming unless they turned it off. */
export function streamingPreference(storage = defaultStorage()) {
  return {
    get: () => readSetting(storage, PREFERENCE_KEY) !== "false",
    set: (on) => writeSetting(storage, PREFERENCE_KEY, on ? "true" : "false"),
  };
}

/** The user's choice of transport for streamed answers: "sse" (the default) or "websocket". */
export function transportPreference(storage = defaultStorage()) {
  return {
    get: () => (readSetting(storage, TRANSPORT_KEY) === "websocket" ? "websocket" : "sse"),
    set: (transport) => writeSetting(storage, TRANSPORT_KEY, transport === "websocket" ? "websocket" : "sse"),
  };
}
