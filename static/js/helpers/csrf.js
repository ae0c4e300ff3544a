// The session's CSRF token on every state-changing request the page's modules send (DOM-free).

/** Headers of `init` with `X-CSRF-Token` added when `init.method` changes state and a token is known. */
export function withCsrf(init, token) {
  const method = String(init?.method ?? "GET").toUpperCase();
  if (!token || method === "GET" || method === "HEAD" || method === "OPTIONS") return init;
  const headers = new Headers(init?.headers ?? {});
  headers.set("X-CSRF-Token", token);
  return { ...init, headers };
}

/** `input` under the dashboard's prefix `base` when it is a path of the dashboard ("/api/..."). */
export function underBase(input, base) {
  return base && typeof input === "string" && input.startsWith("/") && !input.startsWith("//") ? `${base}${input}` : input;
}

/**
 * Make `target.fetch` send the token on this page's own state-changing requests, and put the page's
 * own paths ("/api/tasks") under the dashboard's prefix `base` (--url-prefix), so the modules keep
 * writing the API's paths as the API documents them.
 */
export function installCsrf(target, token, base = "") {
  if (!token && !base) return;
  const original = target.fetch.bind(target);
  target.fetch = (input, init) => {
    const resolved = underBase(input, base);
    const url = new URL(typeof resolved === "string" ? resolved : resolved.url, target.location.href);
    return original(resolved, url.origin === target.location.origin ? withCsrf(init, token) : init);
  };
}
