// Inline SVG elements for the charts and sparklines (text only through textContent).

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element `name` with `attributes` (values stringified). */
export function svgNode(name, attributes = {}) {
  const element = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  return element;
}

/** A vertically centred text label at (`x`, `y`). */
export function svgLabel(text, className, x, y, anchor) {
  const element = svgNode("text", { class: className, x, y, "text-anchor": anchor, "dominant-baseline": "middle" });
  element.textContent = text;
  return element;
}
