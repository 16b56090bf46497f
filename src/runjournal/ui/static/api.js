// The JSON API client. The pages read only through /api, like any other script would.

let firstPosition = null;

/** An error answer from the API: `{"error": {"code", "message"}}` and the HTTP status. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * GET `path` with `params` (an object; arrays repeat the key) and return the decoded body.
 * The journal position of the page's first answer is kept for the live stream.
 */
export async function getJSON(path, params = {}) {
  const response = await fetch(url(path, params), { headers: { Accept: "application/json" } });
  const position = response.headers.get("X-Journal-Position");
  if (firstPosition == null && position != null) firstPosition = position;
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const err = body?.error ?? {};
    throw new ApiError(response.status, err.code ?? "HTTP_" + response.status, err.message ?? response.statusText);
  }
  return body;
}

/** The journal position of the page's first API answer (null before it). */
export function pagePosition() {
  return firstPosition;
}

/** A same-origin URL with query parameters; arrays repeat the key; null values are left out. */
export function url(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value == null) continue;
    for (const v of Array.isArray(value) ? value : [value]) query.append(key, String(v));
  }
  const qs = query.toString();
  return qs ? `${path}?${qs}` : path;
}
