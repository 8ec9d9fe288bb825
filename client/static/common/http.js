// JSON over fetch with RFC 9457 problem details: the one way every page talks to the server.

export class NetworkError extends Error {}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
    this.slug = (this.problem.type || "").split("/").pop();
  }
}

// Resolves to {data, sentAt, receivedAt}; throws NetworkError (no answer) or ApiError.
export async function sendJson(method, path, { body, headers = {}, timeoutMs = 8000 } = {}) {
  const allHeaders = { Accept: "application/json", ...headers };
  if (body !== undefined) allHeaders["Content-Type"] = "application/json";
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const sentAt = Date.now();
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: allHeaders,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: controller.signal,
      cache: "no-store",
      credentials: "same-origin",
    });
  } catch (err) {
    throw new NetworkError(String(err));
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    if (response.ok) throw new NetworkError("unreadable reply");
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return { data, sentAt, receivedAt: Date.now() };
}

export function formatDuration(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = String(Math.floor(total / 3600)).padStart(2, "0");
  const m = String(Math.floor((total % 3600) / 60)).padStart(2, "0");
  const s = String(total % 60).padStart(2, "0");
  return `${h}:${m}:${s}`;
}
