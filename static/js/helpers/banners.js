// Keyed banners in the page's banner area ([data-banner]), cloned from <template data-template="banner">.

/**
 * Show (or update) the banner `key` with `text` (set as textContent).
 * @param {"error"|"warning"|"info"} level
 * @param {{role?: string, dismissible?: boolean}} options
 */
export function showBanner(area, key, level, text, { role = "alert", dismissible = false } = {}) {
  let banner = area.querySelector(`[data-banner-key="${key}"]`);
  if (!banner) {
    const template = document.querySelector('template[data-template="banner"]');
    banner = template.content.firstElementChild.cloneNode(true);
    banner.dataset.bannerKey = key;
    banner.querySelector("[data-dismiss]").addEventListener("click", () => banner.remove());
    area.append(banner);
  }
  banner.dataset.level = level;
  banner.setAttribute("role", role);
  banner.querySelector("[data-dismiss]").hidden = !dismissible;
  const textNode = banner.querySelector('[data-field="text"]');
  if (textNode.textContent !== text) textNode.textContent = text;
  return banner;
}

export function clearBanner(area, key) {
  area.querySelector(`[data-banner-key="${key}"]`)?.remove();
}
