// Worker alerts from the server: spoken in the live region, and shown as browser notifications when allowed.

import { alertMessage } from "../helpers/alerts.js";
import { workerHref } from "../helpers/format.js";

/**
 * Mount the "Enable notifications" header button (`button` may be null);
 * returns `onAlert(alert)` for live.js.
 */
export function mountNotifications(button, announce = () => {}) {
  const supported = typeof window !== "undefined" && "Notification" in window;

  function renderButton() {
    if (button) button.hidden = !(supported && Notification.permission === "default");
  }

  button?.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const permission = await Notification.requestPermission();
      announce(permission === "granted" ? "Notifications enabled" : "Notifications not allowed");
    } finally {
      button.disabled = false;
      renderButton();
    }
  });
  renderButton();

  return function onAlert(alert) {
    const message = alertMessage(alert);
    if (!message) return;
    announce(message.announcement);
    if (!supported || Notification.permission !== "granted") return;
    // One tag per worker and event: several open tabs raise one notification, not one each.
    const notification = new Notification(message.title, { body: message.body, tag: `${alert.event}:${alert.hostname}` });
    notification.addEventListener("click", () => {
      window.focus();
      window.location.assign(workerHref(alert.hostname));
    });
  };
}
