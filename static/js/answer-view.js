// One assistant answer on the page: Markdown rendered by marked and made safe by
// safe-html.js before it touches the DOM (model output can contain HTML, scripts,
// styles, forms and remote images; none of them may act), its reasoning, its tool
// calls, a status line while it is under way, the document excerpts it was given (its
// sources, from the stream's `sources` event), a live tokens-per-second readout and a
// line of details. Tool names,
// arguments and results are model or tool output too: they go in as textContent only.
import { marked } from "../vendor/marked/marked.esm.js";
import {
  citationLabel, formatArguments, isLong, statusText, THINKING_TEXT, toolState,
} from "./answer-format.js";
import { loadImagesOnClick, safeFragment } from "./safe-html.js";

/** The answer's text as a DocumentFragment to insert; see safeFragment. */
export function markdown(text, shownImages) {
  return safeFragment(marked.parse(text || ""), shownImages);
}

const RATE_EVERY_MS = 500; // how often the tokens/s readout may change
const RATE_WINDOW_MS = 2000; // the deltas it counts

export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function describe(message) {
  const parts = [message.model];
  const { ttft_ms: ttft, tokens_per_sec: rate } = message.metrics || {};
  const tokens = message.usage?.output_tokens;
  if (ttft != null) parts.push(`first token ${ttft} ms`);
  if (rate != null) parts.push(`${rate} tokens/s`);
  if (tokens != null) parts.push(`${tokens} tokens`);
  if (message.status && message.status !== "complete") parts.push(message.status);
  return parts.filter(Boolean).join(" · ");
}

export class AnswerView {
  // `onRender` runs after each repaint of the text (the page keeps it in view).
  constructor(message = {}, onRender = () => {}) {
    this.text = message.content || "";
    this.reasoning = message.reasoning || "";
    this.onRender = onRender;
    this.renderQueued = false;
    this.root = element("article", "message assistant");
    this.root.setAttribute("aria-label", "Answer");
    this.thinking = element("details", "reasoning");
    this.thinking.append(element("summary", "", "Reasoning"), element("div", "text"));
    this.tools = element("div", "tools");
    this.body = element("div", "body");
    this.details = element("div", "details");
    // "Sources: [1] handbook.md · chunk 3", each excerpt in a <details>: from the stream's
    // `sources` event, or from the stored message (its `sources`) after a reload.
    this.sources = element("div", "sources");
    this.sources.hidden = true;
    // "Waiting for demo/echo…", "Running calculator…": only while the answer is under way.
    this.statusLine = element("p", "status-line");
    this.statusLine.setAttribute("role", "status");
    this.statusLine.setAttribute("aria-live", "polite");
    // "42 tok/s" while it streams: delta events per second over the last two seconds
    // (a resume's replayed burst soon drops out of it). Not a live region: a number
    // changing twice a second would be noise to a screen reader.
    this.rate = element("p", "stream-rate");
    this.rate.title = "Tokens per second, over the last two seconds";
    this.restartRate();
    this.settled = false;
    this.calls = new Map(); // tool call id → {call, result, card}
    // Remote images the reader chose to load stay loaded as the text repaints.
    this.shownImages = new Set();
    loadImagesOnClick(this.body, this.shownImages);
    this.root.append(this.thinking, this.tools, this.body, this.sources, this.details);
    for (const call of message.tool_calls || []) this.addToolCall(call);
    if (message.sources?.length) this.showSources(message.sources);
    this.render();
    if (message.status) this.finish(message);
  }

  startStreaming() {
    this.settled = false;
    this.root.classList.add("streaming");
    this.body.setAttribute("aria-live", "polite");
    this.root.setAttribute("aria-busy", "true");
    this.body.after(this.statusLine, this.rate);
    this.restartRate();
    if (!this.text) this.showStatus(THINKING_TEXT);
  }

  restartRate() {
    this.deltaTimes = [];
    this.rateShownAt = 0;
    this.rate.hidden = true;
  }

  /** Counts one delta (text or reasoning) and shows the rate, at most twice a second. */
  countDelta() {
    const now = performance.now();
    const times = this.deltaTimes;
    times.push(now);
    while (now - times[0] > RATE_WINDOW_MS) times.shift();
    const seconds = (now - times[0]) / 1000;
    if (seconds < RATE_EVERY_MS / 1000 || now - this.rateShownAt < RATE_EVERY_MS) return;
    this.rateShownAt = now;
    this.rate.textContent = `${Math.round((times.length - 1) / seconds)} tok/s`;
    this.rate.hidden = false;
  }

  reset() {
    this.text = "";
    this.reasoning = "";
    this.tools.replaceChildren();
    this.calls.clear();
    this.showSources([]);
    this.restartRate();
    this.render();
    if (!this.settled) this.showStatus(THINKING_TEXT);
  }

  /** Shows a status event's sentence (or `text`) until text, the next status or the end. */
  showStatus(data) {
    if (this.settled) return;
    this.statusLine.textContent = typeof data === "string" ? data : statusText(data);
    this.statusLine.hidden = false;
  }

  clearStatus() {
    this.statusLine.textContent = "";
    this.statusLine.hidden = true;
  }

  append(kind, content) {
    // The model is writing: that says enough. Only touch the DOM when the line is shown
    // (this runs for every delta).
    if (content && !this.statusLine.hidden) this.clearStatus();
    if (!this.settled) this.countDelta();
    this[kind] += content;
    // Many deltas can arrive between two frames: repaint once per frame.
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.render();
      this.onRender();
    });
  }

  addToolCall(call) {
    if (this.calls.has(call.id)) return; // the same call again (a stored message, then its replay)
    const card = element("div", "tool-card");
    card.dataset.callId = call.id;
    const entry = { call, result: undefined, card };
    this.calls.set(call.id, entry);
    const head = element("div", "tool-head");
    head.append(element("span", "name", call.name), element("span", "status"));
    card.append(head);
    const args = formatArguments(call.arguments);
    if (args) card.append(element("pre", "arguments", args));
    this.tools.append(card);
    this.showToolState(entry);
  }

  /** A `sources` event's chunks, numbered in the order given (best first). */
  showSources(sources) {
    const list = element("ol", "source-list");
    (Array.isArray(sources) ? sources : []).forEach((source, index) => {
      const item = element("li", "source");
      const excerpt = element("details", "source-excerpt");
      excerpt.append(element("summary", "", citationLabel(source, index)),
                     element("p", "excerpt", String(source?.excerpt ?? "")));
      item.append(excerpt);
      list.append(item);
    });
    this.sources.replaceChildren(element("span", "sources-title", "Sources:"), list);
    this.sources.hidden = list.childElementCount === 0;
  }

  /** A tool_result event (or a stored tool message made one by toolResultOfMessage). */
  addToolResult(result) {
    const entry = this.calls.get(result.id);
    if (!entry) return;
    entry.result = result;
    const { card } = entry;
    card.querySelector(".outcome")?.remove();
    const failed = result.error != null;
    const text = String(failed ? result.error : result.result ?? "");
    const pre = element("pre", failed ? "result error" : "result", text);
    if (isLong(text)) {
      const outcome = element("details", "outcome");
      outcome.append(element("summary", "", `${failed ? "Error" : "Result"} · ${text.length} characters`), pre);
      card.append(outcome);
    } else {
      pre.classList.add("outcome");
      card.append(pre);
    }
    this.showToolState(entry);
  }

  /** The card's state in words (" · done · 12 ms"), and as data-state for its look. */
  showToolState({ call, result, card }) {
    const { state, label } = toolState(call, result, this.settled);
    card.dataset.state = state;
    card.querySelector(".status").textContent = ` · ${label}`;
  }

  render() {
    this.thinking.hidden = !this.reasoning;
    this.thinking.querySelector(".text").textContent = this.reasoning;
    this.body.replaceChildren(markdown(this.text, this.shownImages));
  }

  finish(message) {
    this.settle();
    this.details.textContent = describe(message);
  }

  // Runs twice per streamed answer (finish or showError, then the page's finishActive):
  // once is enough; startStreaming starts the next round.
  settle() {
    if (this.settled) return;
    this.settled = true;
    this.root.classList.remove("streaming");
    this.root.removeAttribute("aria-busy");
    this.clearStatus();
    this.statusLine.remove();
    // The details line gives the server's measured rate from here on.
    this.rate.hidden = true;
    this.rate.remove();
    for (const entry of this.calls.values()) this.showToolState(entry); // running → no result
  }

  showError(text, retry) {
    this.settle();
    const notice = element("div", "notice");
    notice.setAttribute("role", "alert");
    notice.append(element("span", "", text));
    if (retry) {
      const button = element("button", "small", "Retry");
      button.type = "button";
      button.addEventListener("click", () => { notice.remove(); retry(); });
      notice.append(button);
    }
    this.root.append(notice);
  }
}
