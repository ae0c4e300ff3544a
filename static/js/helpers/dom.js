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
