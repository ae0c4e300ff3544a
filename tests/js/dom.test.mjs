// Tests of keyed-row reconciliation on a minimal stand-in for a DOM parent (children in order).
import { test } from "node:test";
import assert from "node:assert/strict";

import { reconcileKeyed } from "../../static/js/helpers/dom.js";

/** A parent element: enough of the DOM for placeInOrder and Element.remove(). */
function fakeParent() {
  const parent = { children: [] };
  const node = (name) => {
    const el = {
      name, tagName: "TR",
      get nextElementSibling() { const i = parent.children.indexOf(el); return parent.children[i + 1] ?? null; },
      remove() { const i = parent.children.indexOf(el); if (i >= 0) parent.children.splice(i, 1); },
    };
    return el;
  };
  Object.defineProperty(parent, "firstElementChild", { get: () => parent.children[0] ?? null });
  parent.insertBefore = (el, before) => {
    const at = parent.children.indexOf(el);
    if (at >= 0) parent.children.splice(at, 1);
    const i = before ? parent.children.indexOf(before) : -1;
    parent.children.splice(i < 0 ? parent.children.length : i, 0, el);
  };
  parent.make = node;
  return parent;
}

test("keyed elements are reused, updated, reordered and removed", () => {
  const parent = fakeParent();
  const elements = new Map();
  const updates = [];
  const run = (items) => reconcileKeyed(parent, elements, items, (item) => item.id, (item) => parent.make(item.id),
    (el, item, isNew) => updates.push(`${item.id}:${item.v}:${isNew ? "new" : "kept"}`));

  run([{ id: "a", v: 1 }, { id: "b", v: 1 }, { id: "c", v: 1 }]);
  const [a, b] = parent.children;
  assert.deepEqual(parent.children.map((el) => el.name), ["a", "b", "c"]);

  updates.length = 0;
  run([{ id: "b", v: 2 }, { id: "d", v: 1 }, { id: "a", v: 2 }]);
  assert.deepEqual(parent.children.map((el) => el.name), ["b", "d", "a"]);
  assert.equal(parent.children[0], b);
  assert.equal(parent.children[2], a); // the same elements, moved, never rebuilt
  assert.deepEqual(updates, ["b:2:kept", "d:1:new", "a:2:kept"]);
  assert.deepEqual([...elements.keys()].sort(), ["a", "b", "d"]); // c is gone from the page and the map
});
