// "Latest request wins": of several overlapping requests of one panel, only the newest may render.

/**
 * Return `begin`: call it as a request starts; it returns `isLatest()`, true until a newer
 * request of the same panel begins. A slow answer to an old request is then dropped instead
 * of overwriting a newer one.
 * @returns {() => () => boolean}
 */
export function latestRequest() {
  let generation = 0;
  return function begin() {
    const mine = ++generation;
    return () => mine === generation;
  };
}
