// The summary marker: once a thread's earlier messages are summarized for the model, a
// quiet line after the last message the summary covers says so, with the summary's text
// in a <details>. The messages above it stay shown: the summary is only what the model
// reads instead of them. The text is model output: set as textContent only.
import { element } from "./answer-view.js";

const MARKER_TEXT = "Earlier messages are summarized for the model";

function marker(summary) {
  const node = element("details", "summary-marker");
  node.setAttribute("aria-label", MARKER_TEXT);
  node.append(element("summary", "", MARKER_TEXT),
              element("p", "summary-text", String(summary.content ?? "")));
  return node;
}

/** Notes on `node` (a message or answer on the page) that it shows the stored message `id`. */
export function markMessage(node, id) {
  if (!node || !id) return;
  const ids = (node.dataset.messageIds || "").split(" ").filter(Boolean);
  if (!ids.includes(id)) node.dataset.messageIds = [...ids, id].join(" ");
}

/**
 * Shows `summary` (a thread's `summary`, or null) in `messages`, after the node that
 * shows its `upto_message_id` (see markMessage); replaces the marker shown before, and shows
 * none when that message is not on the page.
 */
export function showSummary(messages, summary) {
  messages.querySelector(".summary-marker")?.remove();
  if (!summary?.upto_message_id) return;
  // ~= matches one word of the space-separated list markMessage keeps.
  const upto = messages.querySelector(
    `:scope > [data-message-ids~="${CSS.escape(summary.upto_message_id)}"]`);
  upto?.after(marker(summary));
}
