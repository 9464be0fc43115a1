// The KMS audit log page, through the admin API (`GET kms/audit`, root only; the call
// `coffer kms audit` makes): filters by key, operation, principal, outcome and time range,
// kept in the page's URL fragment (#/audit?key=…) so a filtered view can be linked; pages
// follow the log's sequence numbers ("Load more").

import { attempt, field, formatDate, h, replace, table } from "./ui.js";

const FILTERS = ["key", "operation", "principal", "outcome", "since", "until"];
const PAGE_SIZE = 100;

const keyLink = (keyId) => keyId
  ? h("a", { href: `#/keys/${encodeURIComponent(keyId)}`, class: "key-link" }, keyId) : "";

/** One page after `after`, with the filters in `params`. */
function fetchPage(api, params, after) {
  const query = [["after", String(after)], ["limit", String(PAGE_SIZE)]];
  for (const name of FILTERS) if (params.get(name)) query.push([name, params.get(name)]);
  return api.admin("GET", "kms/audit", undefined, query);
}

const row = (line) => [
  String(line.seq), formatDate(line.time), line.principal ?? "", line.operation ?? "",
  keyLink(line.key_id ?? line.source_key_id), line.key_version ?? "", line.alias ?? "",
  line.resource ?? "",
  h("span", { class: `outcome ${line.outcome === "ok" ? "ok" : "failed"}` }, line.outcome ?? ""),
];

/** A `datetime-local` value (local time) as RFC 3339 UTC, or "" — and back. */
const toRfc3339 = (local) => (local ? new Date(local).toISOString() : "");
function toLocalInput(rfc3339) {
  const date = new Date(rfc3339);
  if (!rfc3339 || Number.isNaN(date.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

export async function render({ api, page, params, root }) {
  if (!root) {
    replace(page, h("h1", {}, "KMS audit log"), h("p", {}, "Only root may read the KMS audit log."));
    return;
  }
  const input = (name, attributes = {}) =>
    h("input", { id: `audit-${name}`, name, spellcheck: "false", value: params.get(name) ?? "", ...attributes });
  const inputs = {
    key: input("key", { placeholder: "key id, ARN or alias/…" }),
    operation: input("operation", { placeholder: "Decrypt, DisableKey, …" }),
    principal: input("principal", { placeholder: "root, a user, coffer" }),
    outcome: h("select", { id: "audit-outcome", name: "outcome" },
      ["", "ok", "error", "DisabledException", "KMSInvalidStateException", "NotFoundException",
        "AccessDeniedException", "InvalidCiphertextException"]
        .map((value) => h("option", { value, selected: (params.get("outcome") ?? "") === value },
          value || "any"))),
    since: h("input", { id: "audit-since", type: "datetime-local", value: toLocalInput(params.get("since")) }),
    until: h("input", { id: "audit-until", type: "datetime-local", value: toLocalInput(params.get("until")) }),
  };
  const form = h("form", { id: "audit-filters", class: "panel filters", onsubmit: (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const name of ["key", "operation", "principal", "outcome"]) {
      if (inputs[name].value.trim()) query.set(name, inputs[name].value.trim());
    }
    for (const name of ["since", "until"]) if (inputs[name].value) query.set(name, toRfc3339(inputs[name].value));
    const fragment = `#/audit${query.size ? `?${query}` : ""}`;
    // Same filters again: the fragment does not change, so render here.
    if (location.hash === fragment) render({ api, page, params: query, root });
    else location.hash = fragment;
  } },
  field("Key", inputs.key), field("Operation", inputs.operation), field("Principal", inputs.principal),
  field("Outcome", inputs.outcome), field("From", inputs.since), field("To", inputs.until),
  h("button", { type: "submit", id: "audit-apply" }, "Filter"),
  h("a", { href: "#/audit", id: "audit-clear" }, "Clear"));

  const headings = ["Seq", "Time", "Principal", "Operation", "Key id", "Version", "Alias", "Resource", "Outcome"];
  const first = await fetchPage(api, params, 0);
  const results = table(headings, first.lines.map(row), { id: "audit" });
  const body = results.querySelector("tbody");
  const summary = h("p", { id: "audit-summary" });
  const more = h("button", { type: "button", id: "audit-more" }, "Load more");
  let shown = first.lines.length;
  let next = first;
  const update = () => {
    summary.textContent = `${shown} ${shown === 1 ? "entry" : "entries"}` +
      (next.truncated ? " so far, oldest first: more may follow." : ", oldest first: the end of the log.");
    more.hidden = !next.truncated;
  };
  more.addEventListener("click", async () => {
    const page = await attempt(() => fetchPage(api, params, next.next_after));
    if (!page) return;
    if (shown === 0 && page.lines.length) body.replaceChildren();
    for (const cells of page.lines.map(row)) body.append(h("tr", {}, cells.map((cell) => h("td", {}, cell))));
    shown += page.lines.length;
    next = page;
    update();
  });
  update();
  replace(page, h("h1", {}, "KMS audit log"),
    h("p", {}, "Every KMS call, as the server recorded it: who, which key and version, for which " +
      "object, and the outcome. Never key material, plaintext or ciphertext."),
    form, summary, results, more);
}
