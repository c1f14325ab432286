// The Documents panel: upload (a file input or a drop on the zone; the upload's progress,
// then a large file's indexing job followed on its event stream), the list of the user's
// documents (GET /api/v1/documents) with delete, and the current thread's attachments
// (PATCH the thread's `documents`). Everything shown is set as text.
import { api, apiError, authHeaders } from "./api.js";
import { element } from "./answer-view.js";
import { change, errorLine, opens } from "./panel.js";
import { documentSummary, indexingText, uploadText } from "./document-format.js";
import { openStream } from "./sluice-stream.js";

const $ = (selector) => document.querySelector(selector);
const ui = {
  open: $("#open-documents"), dialog: $("#documents-dialog"), file: $("#document-file"),
  drop: $("#document-drop"), progress: $("#document-progress"), error: $("#documents-error"),
  attached: $("#documents-attached"), list: $("#document-list"), empty: $("#documents-empty"),
};
const state = { thread: null };

const showError = errorLine(ui.error);

function showProgress(text) {
  ui.progress.textContent = text;
  ui.progress.hidden = !text;
}

// --- upload ------------------------------------------------------------------------

/**
 * POSTs the file as multipart with XMLHttpRequest, not fetch: only XHR reports how much
 * of a request body has been sent. Resolves with {status, data}; rejects on a network
 * failure or an error answer (its message from the JSON error).
 */
function postFile(file, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", "/api/v1/documents");
    request.setRequestHeader("Accept", "application/json");
    for (const [name, value] of Object.entries(authHeaders)) request.setRequestHeader(name, value);
    request.upload.onprogress = (event) => onProgress(event.loaded, event.lengthComputable ? event.total : 0);
    request.onerror = () => reject(new Error("The upload failed: the server could not be reached."));
    request.onload = () => {
      let data = null;
      try {
        data = JSON.parse(request.responseText);
      } catch {
        // not JSON: the status says enough
      }
      if (request.status >= 200 && request.status < 300) resolve({ status: request.status, data });
      else reject(apiError(request.status, data));
    };
    const form = new FormData();
    form.append("file", file, file.name);
    request.send(form);
  });
}

/** A 202's indexing job, followed on its event stream until it ends. */
async function followIndexing(job, filename) {
  const handle = openStream({
    eventsUrl: `/api/v1/jobs/${encodeURIComponent(job.id)}/events`,
    headers: authHeaders,
    handlers: { onStatus: (data) => showProgress(`${filename}: ${indexingText(data)}`) },
  });
  const done = await handle.done;
  if (done.status === "error" && done.error?.message) showError(`${filename}: ${done.error.message}`);
}

async function upload(files) {
  showError("");
  for (const file of files) {
    try {
      showProgress(uploadText(file.name, 0, file.size));
      const { status, data } = await postFile(file, (loaded, total) => showProgress(uploadText(file.name, loaded, total)));
      await showDocuments();
      if (status === 202 && data?.job) await followIndexing(data.job, file.name);
    } catch (error) {
      showError(`${file.name}: ${error.message}`);
    }
  }
  showProgress("");
  ui.file.value = "";
  await showDocuments();
}

// --- the list and the thread's attachments -------------------------------------------

/** The thread open on the page: app.js keeps its id in the address (#thr_…). */
async function loadThread() {
  const threadId = location.hash.slice(1);
  state.thread = threadId ? (await api("GET", `/api/v1/threads/${encodeURIComponent(threadId)}`)).thread : null;
}

function showAttached() {
  const attached = state.thread?.documents || [];
  if (!state.thread) {
    ui.attached.textContent = "Start a chat to attach documents to it; answers search all of your documents.";
  } else if (attached.length === 0) {
    ui.attached.textContent = "No documents attached: answers search all of your documents.";
  } else {
    ui.attached.textContent = `${attached.length} attached: this chat's answers search only ${attached.length === 1 ? "it" : "them"}.`;
  }
}

async function setAttached(documentId, on) {
  const ids = new Set(state.thread.documents || []);
  if (on) ids.add(documentId);
  else ids.delete(documentId);
  const { thread } = await api("PATCH", `/api/v1/threads/${encodeURIComponent(state.thread.id)}`,
                                { documents: [...ids] });
  state.thread = thread;
}

async function remove(document) {
  if (!window.confirm(`Delete "${document.filename}"? Answers will no longer find it.`)) return;
  await api("DELETE", `/api/v1/documents/${encodeURIComponent(document.id)}`);
  if (state.thread) await loadThread(); // a deleted document is no longer attached
}

const changeDocuments = (action) => change(showError, action, showDocuments);

function documentRow(document) {
  const row = element("li", "document-row");
  row.dataset.id = document.id;
  row.dataset.status = document.status;
  if (state.thread) {
    const box = element("input");
    box.type = "checkbox";
    box.checked = (state.thread.documents || []).includes(document.id);
    box.setAttribute("aria-label", `Attach ${document.filename} to this chat`);
    box.addEventListener("change", () => changeDocuments(() => setAttached(document.id, box.checked)));
    row.append(box);
  }
  const about = element("div", "document-about");
  about.append(element("span", "document-name", document.filename),
               element("span", "details", documentSummary(document)));
  if (document.status === "failed" && document.error) {
    about.append(element("span", "document-error", document.error));
  }
  const button = element("button", "danger small", "Delete");
  button.type = "button";
  button.setAttribute("aria-label", `Delete ${document.filename}`);
  button.addEventListener("click", () => changeDocuments(() => remove(document)));
  row.append(about, button);
  return row;
}

async function showDocuments() {
  try {
    const { documents } = await api("GET", "/api/v1/documents");
    ui.list.replaceChildren(...documents.map(documentRow));
    ui.empty.hidden = documents.length > 0;
    showAttached();
  } catch (error) {
    showError(`Could not load the documents: ${error.message}`);
  }
}

opens(ui.open, ui.dialog, showError, async () => {
  try {
    await loadThread(); // each time: the page may have moved to another chat
  } catch (error) {
    state.thread = null;
    showError(`Could not load this chat: ${error.message}`);
  }
  await showDocuments();
});

ui.file.addEventListener("change", () => {
  if (ui.file.files.length) upload([...ui.file.files]);
});

// The drop zone: a file dragged over it is taken as if chosen with the input.
ui.drop.addEventListener("dragover", (event) => {
  event.preventDefault();
  ui.drop.classList.add("dragging");
});
ui.drop.addEventListener("dragleave", () => ui.drop.classList.remove("dragging"));
ui.drop.addEventListener("drop", (event) => {
  event.preventDefault();
  ui.drop.classList.remove("dragging");
  const files = [...(event.dataTransfer?.files || [])];
  if (files.length) upload(files);
});
