// Small DOM helpers shared by the pages: building elements, the message bar,
// formatting sizes and dates. No framework: the pages are a few tables and forms.

/**
 * An element: h("button", { class: "x", onclick: f }, "text", child…).
 * Attribute values that are functions become event listeners; text is
 * always inserted as text, never parsed as HTML.
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (typeof value === "function") element.addEventListener(name.replace(/^on/, ""), value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** Replaces `node`'s children. */
export function replace(node, ...children) {
  node.replaceChildren();
  for (const child of children.flat()) if (child) node.append(child);
}

const messages = () => document.getElementById("messages");

/** Shows an error: an ApiError's code and message as the server sent them. */
export function showError(error) {
  const text = error?.code ? `${error.code}: ${error.message}` : String(error?.message ?? error);
  replace(messages(), h("div", { class: "message error", role: "alert", id: "error-message" }, text));
}

/** Shows a notice (an action that succeeded). */
export function showNotice(text) {
  replace(messages(), h("div", { class: "message notice", role: "status", id: "notice-message" }, text));
}

export function clearMessages() {
  replace(messages());
}

/** Runs an action, showing its failure; resolves to its result or undefined. */
export async function attempt(action, notice) {
  try {
    const result = await action();
    if (notice) showNotice(typeof notice === "function" ? notice(result) : notice);
    return result;
  } catch (error) {
    showError(error);
    return undefined;
  }
}

export function formatBytes(n) {
  const size = Number(n);
  if (!Number.isFinite(size)) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = size;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${size} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** An ISO date, a Date, or KMS epoch seconds, as local date and time. */
export function formatDate(value) {
  if (value === undefined || value === null || value === "") return "";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

/** A table with a header row and body rows (arrays of cells). */
export function table(headings, rows, attributes = {}) {
  return h("table", attributes,
    h("thead", {}, h("tr", {}, headings.map((heading) => h("th", {}, heading)))),
    h("tbody", {}, rows.length
      ? rows.map((cells) => h("tr", {}, cells.map((cell) => h("td", {}, cell))))
      : h("tr", {}, h("td", { colspan: headings.length, class: "empty" }, "None."))));
}

/** A labelled form field. */
export function field(label, input) {
  return h("label", { class: "field" }, h("span", {}, label), input);
}

/** A key/value description list. */
export function details(pairs, attributes = {}) {
  return h("dl", attributes, pairs.flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, value ?? "")]));
}
