// A tiny DOM helper. Text goes in through textContent only: data is never parsed as HTML.

/**
 * h("div", {class: "x", dataset: {i: 3}, onclick: fn}, "text", child) -> HTMLElement.
 * Attributes: `class`, `style` (object), `dataset` (object), `on<event>` (listener), others via setAttribute.
 * Children: nodes, strings (as text nodes), numbers, null/false (skipped), arrays (flattened).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value == null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "style") Object.assign(el.style, value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child == null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replace all children of `el` with `children` (same rules as h). */
export function replaceChildren(el, ...children) {
  el.textContent = "";
  append(el, children);
}
