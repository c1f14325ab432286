// The Operations panel: pick one of the server's AI operations (GET /api/v1/operations),
// fill the form built from its input_schema, run it streamed or whole (the page's Stream
// toggle decides) and read the result. Everything shown is set as text, never as HTML.
import { api, authHeaders } from "./api.js";
import { element } from "./answer-view.js";
import { errorLine } from "./panel.js";
import { openStream, sendMessage, streamingPreference } from "./sluice-stream.js";

const $ = (selector) => document.querySelector(selector);
const ui = {
  open: $("#open-operations"), dialog: $("#operations-dialog"), picker: $("#operation-picker"),
  description: $("#operation-description"), form: $("#operation-form"),
  fields: $("#operation-fields"), run: $("#operation-run"), stop: $("#operation-stop"),
  status: $("#operation-status"), error: $("#operation-error"), output: $("#operation-output"),
};
const preference = streamingPreference();
const state = { operations: new Map(), loaded: null, active: null };

// --- the form, from a JSON Schema object ---------------------------------------------

function control(name, schema) {
  let input;
  if (schema.type === "string" && Array.isArray(schema.enum)) {
    input = element("select");
    const choices = schema.default === undefined ? ["", ...schema.enum] : schema.enum;
    input.append(...choices.map((choice) => {
      const option = element("option", "", choice === "" ? "—" : String(choice));
      option.value = String(choice);
      return option;
    }));
  } else if (schema.type === "string") {
    input = element("textarea");
    input.rows = 4;
    if (schema.minLength != null) input.minLength = schema.minLength;
    if (schema.maxLength != null) input.maxLength = schema.maxLength;
  } else if (schema.type === "integer" || schema.type === "number") {
    input = element("input");
    input.type = "number";
    input.step = schema.type === "integer" ? "1" : "any";
    if (schema.minimum != null) input.min = String(schema.minimum);
    if (schema.maximum != null) input.max = String(schema.maximum);
  } else if (schema.type === "boolean") {
    input = element("input");
    input.type = "checkbox";
    input.checked = schema.default === true;
  } else {
    input = element("input"); // an array of strings, or a type this panel does not know
    input.type = "text";
    input.placeholder = schema.type === "array" ? "comma, separated, values" : "";
  }
  input.name = name;
  input.id = `operation-field-${name}`;
  if (schema.default !== undefined && schema.type !== "boolean") {
    input.value = Array.isArray(schema.default) ? schema.default.join(", ") : String(schema.default);
  }
  return input;
}

function showForm(operation) {
  const schema = operation.input_schema || {};
  const required = new Set(schema.required || []);
  ui.description.textContent = operation.description || "";
  ui.fields.replaceChildren(...Object.entries(schema.properties || {}).map(([name, field]) => {
    const input = control(name, field);
    input.required = required.has(name) && field.type !== "boolean";
    const label = element("label", "field stacked");
    label.htmlFor = input.id;
    label.append(element("span", "", required.has(name) ? `${name} *` : name));
    if (field.description) label.append(element("span", "details", field.description));
    const row = element("div", "operation-field");
    row.append(label, input);
    return row;
  }));
}

/** The form's values as the operation's `input`: empty fields are left out. */
function inputOf(operation) {
  const properties = operation.input_schema?.properties || {};
  const input = {};
  for (const [name, schema] of Object.entries(properties)) {
    const field = ui.form.elements.namedItem(name);
    if (!field) continue;
    if (schema.type === "boolean") {
      input[name] = field.checked;
    } else if (field.value.trim() === "") {
      continue; // the server fills in a default, or says the field is required
    } else if (schema.type === "integer" || schema.type === "number") {
      input[name] = Number(field.value);
    } else if (schema.type === "array") {
      input[name] = field.value.split(",").map((item) => item.trim()).filter(Boolean);
    } else {
      input[name] = field.value;
    }
  }
  return input;
}

// --- running ----------------------------------------------------------------------

function format(result, output) {
  if (output === "json" || (result !== null && typeof result === "object")) {
    return JSON.stringify(result, null, 2);
  }
  return result == null ? "" : String(result);
}

function describe(done) {
  const parts = [done.status, done.model];
  const tokens = done.usage?.output_tokens;
  if (tokens != null) parts.push(`${tokens} tokens`);
  return parts.filter(Boolean).join(" · ");
}

const showError = errorLine(ui.error);

function showResult(operation, body) {
  ui.output.textContent = format(body.result, operation.output);
  ui.output.hidden = false;
  ui.status.textContent = describe(body);
  if (body.status && body.status !== "complete" && body.error?.message) {
    showError(body.error.message);
  }
}

function setBusy(busy, streamed = false) {
  ui.run.disabled = busy;
  ui.picker.disabled = busy;
  ui.stop.hidden = !(busy && streamed); // only a stream can be stopped
}

async function runWhole(operation, body) {
  try {
    showResult(operation, await sendMessage({
      url: `/api/v1/operations/${encodeURIComponent(operation.name)}`, body, headers: authHeaders,
    }));
  } catch (error) {
    showError(error.message); // a 400 names the field; a 502 says why there is no result
    ui.status.textContent = error.body?.status || "failed";
  }
}

async function runStreamed(operation, body) {
  const handle = openStream({
    url: `/api/v1/operations/${encodeURIComponent(operation.name)}/stream`,
    body,
    headers: authHeaders,
    handlers: {
      onReset: () => { ui.output.textContent = ""; },
      onDelta: (data) => {
        ui.output.hidden = false;
        ui.output.textContent += data.content;
      },
      onStatus: (data) => { ui.status.textContent = data.message; }, // waiting, retrying…
      onError: (data) => showError(data.message),
    },
  });
  state.active = handle;
  try {
    const done = await handle.done;
    if (done.stopped_by_client) ui.status.textContent = "cancelled";
    else showResult(operation, done);
  } catch (error) {
    showError(error.message);
    ui.status.textContent = "failed";
  } finally {
    state.active = null;
  }
}

async function run(operation) {
  const body = { input: inputOf(operation) };
  showError("");
  ui.output.textContent = "";
  ui.output.hidden = true;
  ui.status.textContent = "Running…";
  const streamed = preference.get();
  setBusy(true, streamed);
  try {
    await (streamed ? runStreamed(operation, body) : runWhole(operation, body));
  } finally {
    setBusy(false);
  }
}

// --- the panel ----------------------------------------------------------------------

async function loadOperations() {
  const data = await api("GET", "/api/v1/operations");
  state.operations = new Map(data.operations.map((operation) => [operation.name, operation]));
  ui.picker.replaceChildren(...data.operations.map((operation) => {
    const option = element("option", "", operation.name);
    option.value = operation.name;
    return option;
  }));
  if (data.operations.length) showForm(data.operations[0]);
}

ui.open.addEventListener("click", () => {
  ui.dialog.showModal();
  // Loaded once, on first opening; a failure is shown and tried again on the next one.
  state.loaded ??= loadOperations().catch((error) => {
    state.loaded = null;
    showError(`Could not load the operations: ${error.message}`);
  });
});

ui.picker.addEventListener("change", () => {
  const operation = state.operations.get(ui.picker.value);
  if (operation) showForm(operation);
  showError("");
  ui.output.hidden = true;
  ui.status.textContent = "";
});

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  const operation = state.operations.get(ui.picker.value);
  if (operation && !state.active && !ui.run.disabled) run(operation);
});

ui.stop.addEventListener("click", () => state.active?.stop());
