// The task history page's own panels: the search form and table, and bulk actions on what it matches.

import { parseFilters } from "../helpers/task_filters.js";
import { mountBulkActions } from "../panels/bulk_actions.js";
import { mountTaskSearch } from "../panels/task_search.js";

/** @param {{bootstrap: object, store: object}} page */
export function mount({ bootstrap, store }) {
  for (const root of document.querySelectorAll('[data-panel="task-search"]')) {
    mountTaskSearch(root, store);
    mountBulkActions(root, { enabled: bootstrap.actions === true, filters: parseFilters(window.location.search) });
  }
}
