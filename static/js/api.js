// The JSON API as the page calls it. With SLUICE_AUTH=on, every state-changing request
// echoes the session's CSRF token; a refusal is thrown as an Error carrying the
// server's sentence (and its `code`).
const csrfToken = document.querySelector('meta[name="csrf-token"]')?.content || "";

/** Headers every request of the page sends (the stream module takes them too). */
export const authHeaders = csrfToken ? { "X-CSRF-Token": csrfToken } : {};

/** `method` on `path` with an optional JSON `body`; the answer's JSON, or null for a 204. */
export async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { Accept: "application/json", ...authHeaders,
               ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw apiError(response.status, data);
  return data;
}

/** The Error a refused request is thrown as: the server's sentence and `code`, if it sent them. */
export function apiError(status, data) {
  const error = new Error(data?.error?.message || `HTTP ${status}`);
  error.code = data?.error?.code;
  return error;
}
