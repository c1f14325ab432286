// The words an answer shows besides its text: a tool card's state line and arguments,
// and the status line ("Waiting for demo/echo…"). Pure functions with no DOM, so that
// answer-view.js stays a thin drawing layer and these run under `node --test`.

/** Arguments or a result longer than this (or with more lines) start collapsed. */
export const LONG_TEXT = { chars: 240, lines: 6 };
const ONE_LINE_MAX = 80;

/** "12 ms", "1.4 s", "2 min 5 s"; "" for a missing or nonsensical duration. */
export function formatDuration(ms) {
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}

/** JSON on one line, with a space after `,` and `:` as people write it. */
function oneLine(value) {
  if (Array.isArray(value)) return `[${value.map(oneLine).join(", ")}]`;
  if (value && typeof value === "object") {
    const fields = Object.entries(value).map(([key, item]) => `${JSON.stringify(key)}: ${oneLine(item)}`);
    return `{${fields.join(", ")}}`;
  }
  return JSON.stringify(value);
}

/**
 * A tool call's arguments as the card shows them: JSON on one line when short,
 * indented when long, the text as it came when it is not JSON (a model can send
 * anything), and "" when there are none to show.
 */
export function formatArguments(text) {
  if (text == null) return "";
  const raw = typeof text === "string" ? text : JSON.stringify(text);
  let value;
  try {
    value = JSON.parse(raw);
  } catch {
    return raw.trim();
  }
  if (value && typeof value === "object" && Object.keys(value).length === 0) return "";
  const short = oneLine(value);
  return short.length <= ONE_LINE_MAX ? short : JSON.stringify(value, null, 2);
}

/** Whether a text is long enough to sit in a collapsed <details>. */
export function isLong(text) {
  const value = String(text ?? "");
  return value.length > LONG_TEXT.chars || value.split("\n").length > LONG_TEXT.lines;
}

/**
 * The state of a tool call: `call` as in a tool_call event or a stored message's
 * `tool_calls`; `result` as in a tool_result event (or from toolResultOfMessage),
 * undefined while there is none; `settled` once the answer has ended.
 * Returns {state, label}: state is "requested" (the caller's function: the page only
 * shows it), "running", "done", "failed" or "unfinished" (the answer ended first).
 */
export function toolState(call, result, settled = false) {
  if (result) {
    const state = result.error != null ? "failed" : "done";
    const duration = formatDuration(result.duration_ms);
    return { state, label: duration ? `${state} · ${duration}` : state };
  }
  if (!call?.server) return { state: "requested", label: "requested" };
  return settled ? { state: "unfinished", label: "no result" } : { state: "running", label: "running…" };
}

/** A stored `role: "tool"` message as the tool_result event it was. */
export function toolResultOfMessage(message) {
  const failed = message.status === "error" || message.error != null;
  const result = { id: message.tool_call_id, duration_ms: message.metrics?.duration_ms ?? null };
  if (failed) result.error = message.error?.message || message.content || "The tool failed.";
  else result.result = message.content ?? "";
  return result;
}

const STAGE_TEXT = {
  connecting: "Connecting…",
  retrying: "Retrying…",
  fallback: "Trying another model…",
  retrieving: "Searching the documents…",
  summarizing: "Summarizing the earlier messages…",
  step: "Next step…",
  queued: "Waiting in the queue…",
  delivering: "Delivering…",
};

/** The line a status event shows: the server's sentence, or one made from its stage. */
export function statusText(data) {
  const message = typeof data?.message === "string" ? data.message.trim() : "";
  if (message) return message;
  if (data?.stage === "tool_running" && Array.isArray(data.tools) && data.tools.length) {
    return `Running ${data.tools.join(", ")}…`;
  }
  return STAGE_TEXT[data?.stage] || "Working…";
}

/** What the status line says before any text or status has arrived. */
export const THINKING_TEXT = "Thinking…";

/**
 * A source's line under an answer: "[1] handbook.md · chunk 3". `index` counts from 0
 * as the `sources` event lists them (best first); the chunk is the event's 0-based
 * position in its document shown counting from 1, as people count.
 */
export function citationLabel(source, index) {
  const name = String(source?.filename || "").trim() || "a document";
  const parts = [`[${index + 1}] ${name}`];
  if (Number.isInteger(source?.chunk) && source.chunk >= 0) parts.push(`chunk ${source.chunk + 1}`);
  return parts.join(" · ");
}
