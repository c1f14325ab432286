// The words the Documents panel shows: sizes, a document's state, upload and indexing
// progress. Pure functions with no DOM, so that they run under `node --test`.

const UNITS = ["KB", "MB", "GB"];

/** "512 bytes", "1.5 KB", "12 MB"; "" for a missing or nonsensical size. */
export function formatBytes(bytes) {
  if (typeof bytes !== "number" || !Number.isFinite(bytes) || bytes < 0) return "";
  if (bytes < 1024) return bytes === 1 ? "1 byte" : `${Math.round(bytes)} bytes`;
  let value = bytes;
  let unit = -1;
  do {
    value /= 1024;
    unit += 1;
  } while (value >= 1024 && unit < UNITS.length - 1);
  return `${value < 10 ? value.toFixed(1).replace(/\.0$/, "") : Math.round(value)} ${UNITS[unit]}`;
}

/** "handbook.md · 2.1 KB · ready · 4 chunks": what the list says of a document. */
export function documentSummary(document) {
  const parts = [formatBytes(document?.size_bytes), document?.status || ""];
  if (document?.status === "ready" && Number.isInteger(document.chunk_count)) {
    parts.push(document.chunk_count === 1 ? "1 chunk" : `${document.chunk_count} chunks`);
  }
  return parts.filter(Boolean).join(" · ");
}

/** "Uploading handbook.md… 42%" from an upload's progress event (total may be unknown). */
export function uploadText(filename, loaded, total) {
  if (!(total > 0)) return `Uploading ${filename}…`;
  const percent = Math.min(100, Math.max(0, Math.floor((loaded / total) * 100)));
  return `Uploading ${filename}… ${percent}%`;
}

/** "Indexing 3 of 12 chunks…" from a document job's `status` event; its sentence otherwise. */
export function indexingText(data) {
  const { chunks_done: done, chunks_total: total } = data || {};
  if (data?.stage === "indexing" && Number.isInteger(done) && Number.isInteger(total)) {
    return `Indexing ${done} of ${total} chunks…`;
  }
  const message = typeof data?.message === "string" ? data.message.trim() : "";
  return message || "Indexing…";
}
