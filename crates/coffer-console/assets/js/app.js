// The console's entry point: sign-in, navigation between pages (by URL
// fragment, so the page never reloads and the secret never has to survive
// one), and sign-out.
//
// The secret key is kept in one JavaScript object in this module's memory and
// nowhere else: not in localStorage, not in sessionStorage (which any script
// of the origin could read back, and which the browser may write to disk to
// restore a session), not in a cookie. Reloading or closing the tab forgets
// it; signing out wipes it.

import { Coffer } from "./api.js";
import * as audit from "./audit.js";
import * as buckets from "./buckets.js";
import * as keys from "./keys.js";
import * as objects from "./objects.js";
import * as status from "./status.js";
import { attempt, clearMessages, h, replace, showError } from "./ui.js";
import * as users from "./users.js";

/** The signed-in session: { api, accessKeyId, root }, or null. */
let session = null;

const byId = (id) => document.getElementById(id);

async function signIn(event) {
  event.preventDefault();
  const form = event.target;
  const api = new Coffer({
    accessKeyId: form.elements["access-key-id"].value.trim(),
    secretAccessKey: form.elements["secret-access-key"].value,
    region: form.elements.region.value.trim() || "us-east-1",
  });
  form.elements["secret-access-key"].value = "";
  try {
    // ListBuckets proves the key pair; the admin API answers only root.
    await api.s3("GET");
    const root = await api.admin("GET", "users").then(() => true, () => false);
    session = { api, accessKeyId: api.credentials.accessKeyId, root };
  } catch (error) {
    api.forget();
    showError(error);
    return;
  }
  clearMessages();
  byId("sign-in").hidden = true;
  byId("signed-in").hidden = false;
  byId("who").textContent = `${session.accessKeyId}${session.root ? " (root)" : ""}`;
  byId("nav-users").hidden = !session.root;
  if (!location.hash || location.hash === "#/") location.hash = "#/buckets";
  else route();
}

function signOut() {
  session?.api.forget();
  session = null;
  replace(byId("page"));
  clearMessages();
  byId("sign-in-form").reset();
  byId("signed-in").hidden = true;
  byId("sign-in").hidden = false;
  history.replaceState(null, "", location.pathname);
}

/** The page the fragment names: #/buckets, #/buckets/NAME?prefix=…, #/keys, #/keys/ID, … */
async function route() {
  if (!session) return;
  const [path, search] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(search ?? "");
  const [, section, name] = path.split("/").map(decodeURIComponent);
  const page = byId("page");
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("current", link.getAttribute("href") === `#/${section}`);
  }
  replace(page, h("p", { class: "loading" }, "Loading…"));
  const context = { api: session.api, root: session.root, page, params };
  await attempt(async () => {
    switch (section) {
      case "buckets":
        return name ? objects.render(context, name) : buckets.render(context);
      case "keys":
        return name ? keys.renderKey(context, name) : keys.render(context);
      case "users":
        return users.render(context);
      case "status":
        return status.render(context);
      case "audit":
        return audit.render(context);
      default:
        location.hash = "#/buckets";
        return undefined;
    }
  });
}

byId("sign-in-form").addEventListener("submit", signIn);
byId("sign-out").addEventListener("click", signOut);
window.addEventListener("hashchange", () => {
  clearMessages();
  route();
});
