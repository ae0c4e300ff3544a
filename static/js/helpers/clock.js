// One shared one-second ticker for client-side ages ("last heartbeat N s ago").

/** How often ages are re-rendered. */
export const AGE_TICK_MS = 1000;

const callbacks = new Set();
let timer = null;

/** Call `fn()` every AGE_TICK_MS; returns a function that stops it. */
export function onTick(fn) {
  callbacks.add(fn);
  if (timer === null) timer = setInterval(() => callbacks.forEach((cb) => cb()), AGE_TICK_MS);
  return () => {
    callbacks.delete(fn);
    if (callbacks.size === 0 && timer !== null) {
      clearInterval(timer);
      timer = null;
    }
  };
}
