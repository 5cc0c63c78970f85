// Talking to the explorer's server: JSON, images, background jobs, float32 arrays.

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function checked(response) {
  if (response.ok) return response;
  let message = response.statusText;
  try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
  throw new ApiError(response.status, message);
}

export async function getJSON(url, options = {}) {
  return (await checked(await fetch(url, options))).json();
}

export async function postImage(url, blob) {
  const headers = { "Content-Type": blob.type || "application/octet-stream" };
  return getJSON(url, { method: "POST", body: blob, headers });
}

export async function getBlob(url) {
  const response = await checked(await fetch(url));
  return { blob: await response.blob(), headers: response.headers };
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") q.set(key, String(value));
  }
  return q.toString();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Run a background job to its end: POST /api/jobs, then poll GET /api/jobs/ID.
// `onProgress(fraction, state)` is called while it runs; an aborted `signal` cancels it.
export async function runJob(spec, { onProgress, signal } = {}) {
  let job = await getJSON("/api/jobs?wait=0.3", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(spec),
  });
  while (job.state === "queued" || job.state === "running") {
    if (signal && signal.aborted) {
      fetch(`/api/jobs/${job.id}`, { method: "DELETE" }).catch(() => {});
      throw new DOMException("cancelled", "AbortError");
    }
    if (onProgress) onProgress(job.progress, job.state);
    await sleep(job.progress < 0.05 ? 120 : 250);
    job = await getJSON(`/api/jobs/${job.id}`);
  }
  if (signal && signal.aborted) throw new DOMException("cancelled", "AbortError");
  if (job.state === "done") return job.result;
  throw new ApiError(500, job.error || `job ${job.state}`);
}

// Base64 of little-endian float32 (the server's encoding) -> Float32Array.
export function decodeFloats(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}

export function isAbort(err) { return err && err.name === "AbortError"; }
