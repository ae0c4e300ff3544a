// The --task-link and --worker-link buttons: {label, url} pairs from the API, made into links.

/** Replace `container`'s children with one link per `{label, url}` (http and https only); hide it when none. */
export function fillLinks(container, links) {
  const usable = (Array.isArray(links) ? links : []).filter(
    (link) => typeof link?.label === "string" && typeof link?.url === "string" && /^https?:\/\//i.test(link.url));
  container.replaceChildren(...usable.map((link) => {
    const anchor = document.createElement("a");
    anchor.className = "button button-quiet button-small";
    anchor.href = link.url;
    anchor.target = "_blank";
    anchor.rel = "noopener noreferrer";
    anchor.textContent = link.label;
    return anchor;
  }));
  container.hidden = usable.length === 0;
}
