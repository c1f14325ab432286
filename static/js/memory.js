// The Memory panel: the facts Sluice keeps about the user (GET /api/v1/memories), each
// editable and deletable, and a form to add one. Everything shown is set as text.
import { api } from "./api.js";
import { element } from "./answer-view.js";
import { change, errorLine, opens } from "./panel.js";

const $ = (selector) => document.querySelector(selector);
const ui = {
  open: $("#open-memory"), dialog: $("#memory-dialog"), form: $("#memory-new"),
  content: $("#memory-content"), list: $("#memory-list"), empty: $("#memory-empty"),
  error: $("#memory-error"),
};

const showError = errorLine(ui.error);
const changeMemories = (action) => change(showError, action, showMemories);

function button(text, onClick, className = "") {
  const node = element("button", className, text);
  node.type = "button";
  node.addEventListener("click", onClick);
  return node;
}

function editor(row, memory) {
  const input = element("textarea", "memory-edit");
  input.value = memory.content;
  input.maxLength = 1000;
  input.rows = 2;
  input.setAttribute("aria-label", "Memory");
  const save = button("Save", () => changeMemories(() => api(
    "PATCH", `/api/v1/memories/${encodeURIComponent(memory.id)}`, { content: input.value })),
  "primary");
  row.replaceChildren(input, save, button("Cancel", () => showMemories()));
  input.focus();
}

function memoryRow(memory) {
  const row = element("li", "memory-row");
  row.dataset.id = memory.id;
  const text = element("span", "memory-content", memory.content);
  const source = element("span", "details", memory.source === "extracted" ? "noted from a chat" : "");
  row.append(text, source,
    button("Edit", () => editor(row, memory)),
    button("Delete", () => changeMemories(() => api(
      "DELETE", `/api/v1/memories/${encodeURIComponent(memory.id)}`)), "danger"));
  return row;
}

async function showMemories() {
  try {
    const { memories } = await api("GET", "/api/v1/memories");
    ui.list.replaceChildren(...memories.map(memoryRow));
    ui.empty.hidden = memories.length > 0;
  } catch (error) {
    showError(`Could not load the memories: ${error.message}`);
  }
}

// Loaded each time: a chat may have added one ("remember that …").
opens(ui.open, ui.dialog, showError, showMemories);

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  changeMemories(async () => {
    await api("POST", "/api/v1/memories", { content: ui.content.value });
    ui.content.value = "";
  });
});
