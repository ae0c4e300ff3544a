// Small DOM helpers: clone <template> rows, fill [data-field] hooks with textContent.

/** Clone the first element of `<template data-template="name">` found under `scope`. */
export function cloneTemplate(scope, name) {
  const template = scope.querySelector(`template[data-template="${name}"]`) ?? document.querySelector(`template[data-template="${name}"]`);
  if (!template) throw new Error(`missing <template data-template="${name}">`);
  return template.content.firstElementChild.cloneNode(true);
}

/** Set the text of every `[data-field="field"]` under `el` (untrusted text: textContent only). */
export function setField(el, field, text) {
  for (const node of el.querySelectorAll(`[data-field="${field}"]`)) {
    if (node.textContent !== text) node.textContent = text;
  }
}

/** Set or remove an attribute on every `[data-field="field"]` under `el`. */
export function setFieldAttr(el, field, name, value) {
  for (const node of el.querySelectorAll(`[data-field="${field}"]`)) {
    if (value === null || value === undefined || value === "") node.removeAttribute(name);
    else node.setAttribute(name, value);
  }
}

/** Reorder `parent`'s keyed children to follow `elements`, touching the DOM only where order differs. */
/**
 * Keep one element per key in `parent`, in the order of `items`: reuse the element of a key seen
 * before (`elements` maps key to element), make the others with `create(item)`, call
 * `update(element, item, isNew)` on each, and remove the elements whose key is gone.
 * @returns {Element[]} the elements, in order
 */
export function reconcileKeyed(parent, elements, items, keyOf, create, update) {
  const keep = new Set();
  const ordered = items.map((item) => {
    const key = keyOf(item);
    let element = elements.get(key);
    const isNew = element === undefined;
    if (isNew) {
      element = create(item);
      elements.set(key, element);
    }
    update(element, item, isNew);
    keep.add(key);
    return element;
  });
  for (const [key, element] of elements) {
    if (!keep.has(key)) { element.remove(); elements.delete(key); }
  }
  placeInOrder(parent, ordered);
  return ordered;
}

export function placeInOrder(parent, elements) {
  let cursor = parent.firstElementChild;
  while (cursor && cursor.tagName === "TEMPLATE") cursor = cursor.nextElementSibling;
  for (const el of elements) {
    if (cursor === el) {
      cursor = cursor.nextElementSibling;
    } else {
      parent.insertBefore(el, cursor);
    }
  }
}

/**
 * Call `fn` in a task of its own once the browser has painted the next frame (a requestAnimationFrame
 * callback runs before that frame is laid out and painted; a timer set from it runs after). Returns a
 * function that cancels the call if it has not run yet.
 */
export function afterNextFrame(fn) {
  let timer = null;
  const frame = requestAnimationFrame(() => { timer = setTimeout(fn); });
  return () => { cancelAnimationFrame(frame); if (timer !== null) clearTimeout(timer); };
}
