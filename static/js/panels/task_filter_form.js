// The tasks page's filter bar ([data-filters]): reads and writes the filter state from its
// [data-filter] inputs, and applies on change (selects, checkboxes, times, text on Enter or leaving it).

import { emptyFilters, EXACT_FIELDS, fromLocalInput, toLocalInput } from "../helpers/task_filters.js";

/**
 * Mount the filter form.
 * @param {HTMLFormElement} form
 * @param {{onApply: (filters: object) => void}} options
 * @returns {{read(): object, write(filters: object): void, writeSort(sort: string): void}}
 */
export function mountFilterForm(form, { onApply }) {
  const one = (key) => form.querySelector(`[data-filter="${key}"]`);

  function read() {
    const filters = emptyFilters();
    filters.state = [...form.querySelectorAll('[data-filter="state"]')].filter((box) => box.checked).map((box) => box.value);
    for (const key of [...EXACT_FIELDS, "q"]) filters[key] = one(key).value.trim();
    filters.since = fromLocalInput(one("since").value);
    filters.until = fromLocalInput(one("until").value);
    filters.time = one("time").value || filters.time;
    filters.sort = one("sort").value || filters.sort;
    return filters;
  }

  function write(filters) {
    for (const box of form.querySelectorAll('[data-filter="state"]')) box.checked = filters.state.includes(box.value);
    for (const key of [...EXACT_FIELDS, "q"]) one(key).value = filters[key] ?? "";
    one("since").value = toLocalInput(filters.since);
    one("until").value = toLocalInput(filters.until);
    one("time").value = filters.time;
    writeSort(filters.sort);
  }

  /** Show `sort` in the sort select alone (a column header was clicked), leaving the other fields as they are. */
  function writeSort(sort) {
    one("sort").value = sort;
  }

  form.addEventListener("change", () => onApply(read()));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    onApply(read());
  });
  form.querySelector("[data-clear]")?.addEventListener("click", () => {
    write({ ...emptyFilters(), sort: one("sort").value });
    onApply(read());
  });
  return { read, write, writeSort };
}
