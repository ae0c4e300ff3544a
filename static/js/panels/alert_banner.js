// One banner on every page while alert rules fire: red when one is critical, amber otherwise, their
// summaries (silenced ones left out) and a link to /alerts. A silence that runs out shows again on the tick.

import { bannerAlerts, bannerLevel, bannerText } from "../helpers/alert_rules.js";
import { clearBanner } from "../helpers/banners.js";
import { onTick } from "../helpers/clock.js";
import { cloneTemplate, setField } from "../helpers/dom.js";

const ALERTS_KEY = "alert-rules";

/** Mount the alert rules' banner in the banner area `area`. */
export function mountAlertBanner(area, store) {
  function render(event) {
    if (event && event.type !== "alerts" && event.type !== "snapshot") return;
    const firing = bannerAlerts(store.alerts, store.serverNowMs() / 1000);
    if (firing.length === 0) {
      clearBanner(area, ALERTS_KEY);
      return;
    }
    let banner = area.querySelector(`[data-banner-key="${ALERTS_KEY}"]`);
    if (!banner) {
      banner = cloneTemplate(document, "alert-banner");
      banner.dataset.bannerKey = ALERTS_KEY;
      area.append(banner);
    }
    const level = bannerLevel(firing);
    if (banner.dataset.level !== level) banner.dataset.level = level;
    setField(banner, "text", bannerText(firing));
  }

  render();
  const unsubscribe = store.subscribe(render);
  const stopTick = onTick(() => render());
  return () => { unsubscribe(); stopTick(); };
}
