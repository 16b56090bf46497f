// Building DOM nodes. Every string becomes a text node: user data is never parsed as HTML.

/**
 * Create an element. `attrs` keys: "class", "text", "on:<event>", "dataset", or any attribute
 * name (set with setAttribute, so values are plain strings, never markup). Children are nodes or
 * strings (text nodes); null and false are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = String(value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on:")) el.addEventListener(name.slice(3), value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

/** Append nodes or strings (as text) to `el`. */
export function append(el, children) {
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace every child of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A coloured square for a run, the same colour as its chart lines. */
export function swatch(color) {
  const el = h("span", { class: "swatch", "aria-hidden": "true" });
  el.style.backgroundColor = color;
  return el;
}
