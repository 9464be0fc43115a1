// The users page (root only, through the admin API): list, add, delete. A new
// user's secret is shown once, as `coffer user add` prints it.

import { attempt, details, field, formatDate, h, replace, showNotice, table } from "./ui.js";

export async function render(context) {
  const { api, page, root } = context;
  if (!root) {
    replace(page, h("h1", {}, "Users"), h("p", {}, "Only root may manage users."));
    return;
  }
  const users = await api.admin("GET", "users");
  const rows = users.map((user) => [
    user.name, h("code", {}, user.access_key), formatDate(new Date(user.created_ms)),
    user.name === "root" ? "" : h("button", { type: "button", class: "danger", onclick: async () => {
      if (!confirm(`Delete the user ${user.name}?`)) return;
      if (await attempt(() => api.admin("DELETE", `users/${encodeURIComponent(user.name)}`))) {
        await render(context);
        showNotice(`Deleted user ${user.name}.`);
      }
    } }, "Delete"),
  ]);
  const name = h("input", { id: "new-user-name", required: true, spellcheck: "false" });
  const created = h("div", { id: "new-user" });
  const form = h("form", { id: "add-user", class: "panel", onsubmit: async (event) => {
    event.preventDefault();
    const user = await attempt(() => api.admin("POST", "users", { name: name.value.trim() }));
    if (!user) return;
    await render(context);
    showNotice(`Added user ${user.name}. Copy the secret now: it is not shown again.`);
    replace(document.getElementById("new-user"), details([
      ["Name", user.name], ["Access key id", h("code", {}, user.access_key)],
      ["Secret access key", h("code", {}, user.secret_key)],
    ]));
  } }, h("h2", {}, "Add a user"), field("Name", name), h("button", { type: "submit" }, "Add user"), created);
  replace(page, h("h1", {}, "Users"), table(["Name", "Access key id", "Created", ""], rows, { id: "users" }), form);
}
