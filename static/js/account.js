// Signed in (SLUICE_AUTH=on): sign out, and the user's API keys (list, create, revoke).
import { element } from "./answer-view.js";

const $ = (selector) => document.querySelector(selector);
const csrf = { "X-CSRF-Token": $('meta[name="csrf-token"]')?.content || "" };
const dialog = $("#keys-dialog");

async function call(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { ...csrf, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = response.status === 204 ? null : await response.json();
  if (!response.ok) throw new Error(data?.error?.message || `HTTP ${response.status}`);
  return data;
}

function keyRow(key) {
  const state = key.revoked_at ? "revoked" : "active";
  const row = element("li", `key-row ${state}`);
  row.append(element("span", "key-name", key.name), element("code", "", `${key.prefix}…`),
             element("span", "details", state));
  if (!key.revoked_at) {
    const revoke = element("button", "", "Revoke");
    revoke.type = "button";
    revoke.addEventListener("click", async () => {
      await call("DELETE", `/api/v1/keys/${encodeURIComponent(key.id)}`);
      await showKeys();
    });
    row.append(revoke);
  }
  return row;
}

async function showKeys() {
  const { keys } = await call("GET", "/api/v1/keys");
  $("#key-list").replaceChildren(...keys.map(keyRow));
}

$("#open-keys").addEventListener("click", async () => {
  $("#key-secret").hidden = true;
  dialog.showModal();
  await showKeys();
});

$("#new-key").addEventListener("submit", async (event) => {
  event.preventDefault();
  const { secret } = await call("POST", "/api/v1/keys", { name: $("#key-name").value });
  const shown = $("#key-secret");
  shown.replaceChildren("Copy it now, it is not shown again: ", element("code", "", secret));
  shown.hidden = false;
  $("#key-name").value = "";
  await showKeys();
});

$("#sign-out").addEventListener("click", async () => {
  await call("POST", "/logout");
  location.assign("/login");
});
