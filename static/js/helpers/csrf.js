// The session's CSRF token on every state-changing request the page's modules send (DOM-free).

/** Headers of `init` with `X-CSRF-Token` added when `init.method` changes state and a token is known. */
export function withCsrf(init, token) {
  const method = String(init?.method ?? "GET").toUpperCase();
  if (!token || method === "GET" || method === "HEAD" || method === "OPTIONS") return init;
  const headers = new Headers(init?.headers ?? {});
  headers.set("X-CSRF-Token", token);
  return { ...init, headers };
}

/** Make `target.fetch` send the token on this page's own state-changing requests. */
export function installCsrf(target, token) {
  if (!token) return;
  const original = target.fetch.bind(target);
  target.fetch = (input, init) => {
    const url = new URL(typeof input === "string" ? input : input.url, target.location.href);
    return original(input, url.origin === target.location.origin ? withCsrf(init, token) : init);
  };
}
