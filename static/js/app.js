// The chat page. Talks to Sluice's JSON API; every stream goes through
// sluice-stream.js (no SSE parsing here), over SSE or the page's one Socket.IO socket
// (page-socket.js) as the user chose; every answer is drawn by answer-view.js.
import { api, authHeaders } from "./api.js";
import { toolResultOfMessage } from "./answer-format.js";
import { AnswerView, element } from "./answer-view.js";
import { pageSocket } from "./page-socket.js";
import { openStream, sendMessage, streamingPreference, transportPreference } from "./sluice-stream.js";
import { markMessage, showSummary } from "./thread-summary.js";

const $ = (selector) => document.querySelector(selector);
const ui = {
  app: $("#app"), threads: $("#thread-list"), title: $("#thread-title"),
  messages: $("#messages"), empty: $("#empty-state"), form: $("#composer"),
  prompt: $("#prompt"), send: $("#send"), stop: $("#stop"), models: $("#model-picker"),
  streaming: $("#streaming-toggle"), transport: $("#transport-picker"), newThread: $("#new-thread"),
  toggleSidebar: $("#toggle-sidebar"),
};
const preference = streamingPreference();
const transport = transportPreference();
// `loading`: the thread being opened, if any; a message sent meanwhile waits for it,
// or the thread's messages would be drawn over the new answer.
const state = { threads: [], threadId: null, active: null, loading: Promise.resolve() };

// --- rendering ---------------------------------------------------------------------

function scrollToEnd() {
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

function showUserMessage(content, messageId) {
  ui.empty.hidden = true;
  const node = element("article", "message user");
  markMessage(node, messageId); // a summary marker may go after it
  node.setAttribute("aria-label", "Your message");
  node.append(element("div", "body", content));
  ui.messages.append(node);
  return node;
}

function showAnswer(message) {
  ui.empty.hidden = true;
  const view = new AnswerView(message, scrollToEnd);
  markMessage(view.root, message.id);
  ui.messages.append(view.root);
  scrollToEnd();
  return view;
}

// --- threads -------------------------------------------------------------------------

async function loadThreads() {
  state.threads = (await api("GET", "/api/v1/threads")).threads;
  ui.threads.replaceChildren(...state.threads.map(threadItem));
}

function threadItem(thread) {
  const item = element("li", thread.id === state.threadId ? "current" : "");
  const open = element("button", "open", thread.title || "Untitled");
  open.type = "button";
  open.addEventListener("click", () => openThread(thread.id));
  const rename = element("button", "small", "✎");
  rename.type = "button";
  rename.setAttribute("aria-label", `Rename ${thread.title || "thread"}`);
  rename.addEventListener("click", () => renameThread(thread));
  const remove = element("button", "small", "✕");
  remove.type = "button";
  remove.setAttribute("aria-label", `Delete ${thread.title || "thread"}`);
  remove.addEventListener("click", () => deleteThread(thread));
  item.append(open, rename, remove);
  return item;
}

async function renameThread(thread) {
  const title = window.prompt("New name for this chat", thread.title || "");
  if (!title || !title.trim()) return;
  await api("PATCH", `/api/v1/threads/${thread.id}`, { title });
  await loadThreads();
  if (thread.id === state.threadId) ui.title.textContent = title.trim();
}

async function deleteThread(thread) {
  if (!window.confirm(`Delete "${thread.title || "this chat"}" and its messages?`)) return;
  await api("DELETE", `/api/v1/threads/${thread.id}`);
  if (thread.id === state.threadId) newChat();
  await loadThreads();
}

function newChat() {
  stopFollowing();
  state.threadId = null;
  history.replaceState(null, "", location.pathname);
  ui.title.textContent = "New chat";
  ui.messages.replaceChildren(ui.empty);
  ui.empty.hidden = false;
  loadThreads();
  ui.prompt.focus();
}

function openThread(threadId) {
  state.loading = loadThread(threadId);
  return state.loading;
}

async function loadThread(threadId) {
  stopFollowing();
  state.threadId = threadId;
  history.replaceState(null, "", `#${threadId}`);
  ui.app.classList.remove("sidebar-open");
  const [{ thread }, { messages }] = await Promise.all([
    api("GET", `/api/v1/threads/${threadId}`),
    api("GET", `/api/v1/threads/${threadId}/messages`),
  ]);
  ui.title.textContent = thread.title || "Untitled";
  if (thread.model) chooseModel(thread.model);
  ui.messages.replaceChildren(ui.empty);
  ui.empty.hidden = messages.length > 0;
  let answer = null;
  for (const message of messages) {
    if (message.role === "user") showUserMessage(message.content, message.id);
    else if (message.role === "tool") {
      answer?.addToolResult(toolResultOfMessage(message));
      markMessage(answer?.root, message.id); // drawn in its answer's card
    } else if (message.status === "streaming") {
      answer = showAnswer({});
      follow(answer, { streamId: message.stream_id, lastEventId: 0 });
    } else answer = showAnswer(message);
  }
  showSummary(ui.messages, thread.summary);
  await loadThreads();
}

// --- sending and streaming --------------------------------------------------------

function setBusy(busy) {
  ui.send.hidden = busy;
  ui.stop.hidden = !busy;
  ui.prompt.disabled = busy;
}

function stopFollowing() {
  // Leaving a thread does not stop its answer: it goes on, and is there when we come back.
  state.active = null;
  setBusy(false);
}

async function ensureThread(content) {
  if (state.threadId) return state.threadId;
  const { thread } = await api("POST", "/api/v1/threads", { model: ui.models.value || undefined });
  state.threadId = thread.id;
  history.replaceState(null, "", `#${thread.id}`);
  ui.title.textContent = content.slice(0, 60);
  return thread.id;
}

async function send(content) {
  const threadId = await ensureThread(content);
  const question = showUserMessage(content);
  const body = { content, model: ui.models.value || undefined };
  if (!preference.get()) return sendWhole(threadId, body, question);
  const view = showAnswer({});
  follow(view, { threadId, body }, () => send(content), question);
}

async function sendWhole(threadId, body, question) {
  setBusy(true);
  try {
    const { message, response } = await sendMessage({
      url: `/api/v1/threads/${threadId}/messages`, body, headers: authHeaders,
    });
    markMessage(question, message?.id);
    const view = showAnswer(response);
    if (response.tool_calls?.length) {
      // The answer is shown already; cards left without their results are no reason to fail it.
      await showToolResults(view, threadId, response.id).catch(() => {});
    }
  } catch (error) {
    const view = error.body?.response ? showAnswer(error.body.response) : showAnswer({});
    view.showError(error.message, () => send(body.content));
  } finally {
    setBusy(false);
    loadThreads();
  }
}

// A whole (not streamed) answer's tool results are messages of their own: fetch them.
async function showToolResults(view, threadId, messageId) {
  const { messages } = await api("GET", `/api/v1/threads/${threadId}/messages`);
  const after = messages.slice(messages.findIndex((m) => m.id === messageId) + 1);
  for (const message of after) {
    if (message.role === "tool") view.addToolResult(toolResultOfMessage(message));
  }
}

// What openStream needs, over the chosen transport, for `source`: a new answer
// (threadId + the body it POSTs) or one already under way (streamId + lastEventId).
function streamOptions({ threadId, body, streamId, lastEventId }) {
  if (transport.get() === "websocket") {
    const request = body && { event: "send_message", data: { thread_id: threadId, ...body } };
    return { transport: "websocket", socket: pageSocket(), request, streamId, lastEventId };
  }
  if (body) return { url: `/api/v1/threads/${threadId}/messages/stream`, body, headers: authHeaders };
  return { streamId, lastEventId, headers: authHeaders };
}

// Stream into `view`: a new answer or one already under way (see streamOptions).
// `question`: the user's message on the page, to be given its id once it is stored.
function follow(view, source, retry, question = null) {
  view.startStreaming();
  setBusy(true);
  // `summarized`: the stream said it summarized the thread (status summarizing; a resume
  // from event 0 replays it), so the summary marker has moved.
  const active = { view, threadId: state.threadId, summarized: false };
  active.handle = openStream({
    ...streamOptions(source),
    handlers: {
      onReset: () => view.reset(),
      onMessageSaved: (data) => { if (question) markMessage(question, data.message.id); },
      onSources: (data) => view.showSources(data.sources),
      onDelta: (data) => view.append("text", data.content),
      onReasoning: (data) => view.append("reasoning", data.content),
      onStatus: (data) => {
        if (data?.stage === "summarizing") active.summarized = true;
        view.showStatus(data);
      },
      onToolCall: (data) => view.addToolCall(data),
      onToolResult: (data) => view.addToolResult(data),
      onError: (data) => view.showError(data.message, data.retryable ? retry : null),
    },
  });
  state.active = active;
  active.handle.done
    .then((done) => settle(active, done))
    .catch((error) => {
      view.showError(error.message, retry);
      finishActive(active);
    });
}

async function settle(active, done) {
  // The stored message is the truth (a Stop may land a few tokens after the click).
  const stored = await storedAnswer(active.threadId, done.message_id);
  if (stored) {
    active.view.text = stored.content;
    active.view.reasoning = stored.reasoning || "";
    active.view.render();
    active.view.finish(stored);
    markMessage(active.view.root, stored.id);
  }
  finishActive(active);
  // The answer summarized the thread: show where the new summary ends.
  if (active.summarized && active.threadId === state.threadId) {
    refreshSummary(active.threadId).catch(() => {});
  }
}

async function refreshSummary(threadId) {
  const { thread } = await api("GET", `/api/v1/threads/${threadId}`);
  if (threadId === state.threadId) showSummary(ui.messages, thread.summary);
}

async function storedAnswer(threadId, messageId) {
  for (let attempt = 0; threadId && attempt < 20; attempt += 1) {
    const { messages } = await api("GET", `/api/v1/threads/${threadId}/messages`);
    const answers = messages.filter((m) => m.role === "assistant");
    const stored = answers.find((m) => m.id === messageId) || answers.at(-1);
    if (!stored || stored.status !== "streaming") return stored;
    await new Promise((resolve) => setTimeout(resolve, 100));  // a Stop is being stored
  }
  return null;
}

function finishActive(active) {
  active.view.settle();
  if (state.active === active) {
    state.active = null;
    setBusy(false);
  }
  loadThreads();
}

// --- controls ----------------------------------------------------------------------

async function loadModels() {
  const { models } = await api("GET", "/api/v1/models");
  ui.models.replaceChildren(...models.map((model) => {
    const option = element("option", "", model.id);
    option.value = model.id;
    return option;
  }));
}

function chooseModel(modelId) {
  // A thread may use a model this server does not list (set through the API): show it.
  if (![...ui.models.options].some((option) => option.value === modelId)) {
    const option = element("option", "", modelId);
    option.value = modelId;
    ui.models.append(option);
  }
  ui.models.value = modelId;
}

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  const content = ui.prompt.value.trim();
  if (!content || state.active) return;
  ui.prompt.value = "";
  state.loading.catch(() => {}).then(() => send(content)).catch((error) => showAnswer({}).showError(error.message, () => send(content)));
});

ui.prompt.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ui.form.requestSubmit();
  }
});

ui.stop.addEventListener("click", async () => {
  const active = state.active;
  if (!active) return;
  ui.stop.disabled = true;
  try {
    await active.handle.stop();
  } finally {
    ui.stop.disabled = false;
  }
});

ui.streaming.checked = preference.get();
ui.transport.value = transport.get();
ui.transport.disabled = !ui.streaming.checked; // whole answers come as JSON either way
ui.streaming.addEventListener("change", () => {
  preference.set(ui.streaming.checked);
  ui.transport.disabled = !ui.streaming.checked;
});
ui.transport.addEventListener("change", () => transport.set(ui.transport.value));
ui.newThread.addEventListener("click", newChat);
ui.toggleSidebar.addEventListener("click", () => {
  const open = ui.app.classList.toggle("sidebar-open");
  ui.toggleSidebar.setAttribute("aria-expanded", String(open));
});

// The thread is in the address (#thr_…): links, back/forward and reloads open it.
window.addEventListener("hashchange", () => {
  const threadId = location.hash.slice(1);
  if (threadId && threadId !== state.threadId) openThread(threadId);
});

await loadModels();
await loadThreads();
if (location.hash.length > 1) await openThread(location.hash.slice(1));
ui.prompt.focus();
