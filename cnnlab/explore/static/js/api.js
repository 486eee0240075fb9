// The JSON API (docs/explore/api.md): requests, errors as messages, arrays decoded.

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function reply(response) {
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    const message = body && body.error ? body.error : `HTTP ${response.status}`;
    throw new ApiError(response.status, message);
  }
  return body;
}

export async function get(path) {
  return reply(await fetch(path, { headers: { Accept: "application/json" } }));
}

export async function post(path, body) {
  return reply(await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  }));
}

export async function postBytes(path, bytes) {
  return reply(await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/octet-stream", Accept: "application/json" },
    body: bytes,
  }));
}

// An encoded array -> {shape, data: Float32Array | Uint8Array} (uint8 maps with per-map
// min/max are expanded to floats: value = min + (max - min) q / 255).
export function decode(array) {
  const bytes = Uint8Array.from(atob(array.data), (c) => c.charCodeAt(0));
  const shape = array.shape;
  if (array.dtype === "float32") return { shape, data: new Float32Array(bytes.buffer) };
  if (array.dtype !== "uint8") throw new Error(`unsupported dtype ${array.dtype}`);
  if (!array.min) return { shape, data: bytes };
  const data = new Float32Array(bytes.length);
  const per = bytes.length / array.min.length;
  for (let i = 0; i < bytes.length; i++) {
    const m = Math.floor(i / per);
    data[i] = array.min[m] + (array.max[m] - array.min[m]) * bytes[i] / 255;
  }
  return { shape, data };
}

// Polls a job until it is done; onProgress(fraction) on each poll.
export async function waitJob(id, onProgress, intervalMs = 150) {
  for (;;) {
    const job = await get(`/api/jobs/${encodeURIComponent(id)}`);
    onProgress(job.progress || 0);
    if (job.state === "done") return job.result;
    if (job.state === "failed") throw new ApiError(500, job.error || "the job failed");
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
