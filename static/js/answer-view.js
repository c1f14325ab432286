// One assistant answer on the page: Markdown rendered by marked and made safe by
// safe-html.js before it touches the DOM (model output can contain HTML, scripts,
// styles, forms and remote images; none of them may act), its reasoning, its tool
// calls, and a line of details.
import { marked } from "../vendor/marked/marked.esm.js";
import { loadImagesOnClick, safeFragment } from "./safe-html.js";

/** The answer's text as a DocumentFragment to insert; see safeFragment. */
export function markdown(text, shownImages) {
  return safeFragment(marked.parse(text || ""), shownImages);
}

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
    // Remote images the reader chose to load stay loaded as the text repaints.
    this.shownImages = new Set();
    loadImagesOnClick(this.body, this.shownImages);
    this.root.append(this.thinking, this.tools, this.body, this.details);
    for (const call of message.tool_calls || []) this.addToolCall(call);
    this.render();
    if (message.status) this.finish(message);
  }

  startStreaming() {
    this.root.classList.add("streaming");
    this.body.setAttribute("aria-live", "polite");
    this.root.setAttribute("aria-busy", "true");
  }

  reset() {
    this.text = "";
    this.reasoning = "";
    this.tools.replaceChildren();
    this.render();
  }

  append(kind, content) {
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
    const card = element("div", "tool-card");
    card.dataset.callId = call.id;
    card.append(element("span", "name", call.name), element("span", "status", " · requested"),
                element("pre", "arguments", call.arguments));
    this.tools.append(card);
  }

  addToolResult(result) {
    const card = this.tools.querySelector(`[data-call-id="${CSS.escape(result.id)}"]`);
    if (!card) return;
    card.querySelector(".status").textContent = result.error ? " · failed" : " · done";
    card.append(element("pre", "result", result.error || result.result));
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

  settle() {
    this.root.classList.remove("streaming");
    this.root.removeAttribute("aria-busy");
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
