// Server alerts (workers lost or back, queue backlogs): spoken in the live region, and shown as
// browser notifications when allowed; a click opens the worker's or the queue's page.

import { alertMessage } from "../helpers/alerts.js";

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
    const notification = new Notification(message.title, { body: message.body, tag: message.tag });
    notification.addEventListener("click", () => {
      window.focus();
      window.location.assign(message.href);
    });
  };
}
