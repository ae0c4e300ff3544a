// Reading the dashboard's JSON API.

/** GET `url` as JSON; throw with the server's error (or the status) when it is not 2xx. */
export async function getJson(url) {
  let response;
  try {
    response = await fetch(url, { headers: { Accept: "application/json" } });
  } catch (error) {
    throw new Error(`Could not reach the dashboard: ${error.message}`);
  }
  const body = await response.json().catch(() => null);
  if (!response.ok || body === null) throw new Error(body?.error ?? `${response.status} ${response.statusText}`);
  return body;
}
