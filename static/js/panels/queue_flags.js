// A queue's flags ("no consumer", "growing", "over threshold") as small badges cloned from <template data-template="queue-flag">.

import { cloneTemplate, setField } from "../helpers/dom.js";
import { queueFlags } from "../helpers/queue_info.js";

/** Fill the flag container `list` for `queue`; rebuilt only when the set of flags changes. */
export function renderQueueFlags(list, queue) {
  if (!list) return;
  const flags = queueFlags(queue);
  const keys = flags.map((flag) => flag.key).join(" ");
  if (list.dataset.flags === keys) return;
  list.dataset.flags = keys;
  list.replaceChildren(...flags.map((flag) => {
    const badge = cloneTemplate(document, "queue-flag");
    badge.dataset.level = flag.level;
    badge.dataset.flag = flag.key;
    badge.title = flag.title;
    setField(badge, "text", flag.text);
    return badge;
  }));
}
