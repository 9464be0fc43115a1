// A bucket's page: its settings (default encryption, versioning) and the
// object browser: list by prefix, upload with progress (multipart for large
// files), download, delete, and each object's protection.

import { objectPath, xmlText } from "./api.js";
import { encryptionFields, getEncryption, getVersioning, putEncryption, putVersioning } from "./buckets.js";
import { attempt, details, formatBytes, formatDate, h, replace, showError, showNotice, table } from "./ui.js";

const bucketHash = (bucket, prefix) =>
  `#/buckets/${encodeURIComponent(bucket)}${prefix ? `?prefix=${encodeURIComponent(prefix)}` : ""}`;

/** How an object is protected, from its HEAD headers and (root only) the admin API's envelope view. */
async function protectionOf(api, root, bucket, key) {
  const head = await api.s3("HEAD", { bucket, key });
  const header = (name) => head.headers.get(name) ?? "";
  const mode = header("x-amz-server-side-encryption") ||
    (header("x-amz-server-side-encryption-customer-algorithm") ? "SSE-C" : "none (plaintext)");
  const sm4 = header("x-amz-server-side-data-encryption") === "SM4" || mode === "SM4";
  const protection = {
    mode,
    algorithm: mode.startsWith("none") ? "—" : sm4 ? "SM4-GCM" : "AES-256-GCM",
    keyId: header("x-amz-server-side-encryption-aws-kms-key-id") || "—",
    keyVersion: "—",
    formatVersion: "—",
    bucketKey: header("x-amz-server-side-encryption-bucket-key-enabled") === "true" ? "yes" : "no",
    size: header("content-length"),
    etag: header("etag"),
    contentType: header("content-type"),
    modified: header("last-modified"),
    versionId: header("x-amz-version-id") || "—",
  };
  if (root) {
    // The key version and format version are in the envelope, which only the admin API shows.
    const envelope = await api.admin("GET", `protection${objectPath(bucket, key)}`).catch(() => null);
    if (envelope?.envelope) {
      protection.algorithm = envelope.envelope.algorithm;
      protection.keyVersion = String(envelope.envelope.key_version ?? "—");
      protection.formatVersion = String(envelope.envelope.format_version);
      protection.wrapKind = envelope.envelope.wrap_kind;
    }
  }
  return protection;
}

async function showProtection(context, bucket, key) {
  const { api, root } = context;
  const panel = document.getElementById("object-details");
  const protection = await attempt(() => protectionOf(api, root, bucket, key));
  if (!protection) return;
  replace(panel,
    h("h2", {}, `Object ${key}`),
    details([
      ["Encryption (SSE mode)", h("span", { id: "object-sse" }, protection.mode)],
      ["Algorithm", h("span", { id: "object-algorithm" }, protection.algorithm)],
      ["KMS key id", h("code", { id: "object-key-id" }, protection.keyId)],
      ["Key version", h("span", { id: "object-key-version" }, protection.keyVersion)],
      ["Format version", h("span", { id: "object-format-version" }, protection.formatVersion)],
      ["Bucket key", h("span", { id: "object-bucket-key" }, protection.bucketKey)],
      ["Wrapped by", protection.wrapKind ?? (root ? "—" : "(root only)")],
      ["Size", formatBytes(protection.size)],
      ["ETag", protection.etag],
      ["Content type", protection.contentType],
      ["Last modified", formatDate(protection.modified)],
      ["Version id", protection.versionId],
    ], { id: "protection" }));
  panel.hidden = false;
}

/** Downloads an object: a signed GET, handed to the browser as a file. */
async function download(api, bucket, key) {
  const response = await api.s3("GET", { bucket, key });
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: key.split("/").pop() || "download" });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return blob.size;
}

async function settingsPanel(context, bucket) {
  const { api } = context;
  const [encryption, versioning] = await Promise.all([getEncryption(api, bucket), getVersioning(api, bucket)]);
  const form = await encryptionFields(api, encryption);
  const current = encryption
    ? [encryption.algorithm, encryption.keyId, encryption.bucketKey ? "bucket key" : ""].filter(Boolean).join(" · ")
    : "server default";
  const versioningOn = versioning === "Enabled";
  return h("details", { class: "panel", id: "bucket-settings" },
    h("summary", {}, "Settings: ", h("span", { id: "bucket-encryption" }, current),
      " · versioning ", h("span", { id: "bucket-versioning" }, versioning || "never enabled")),
    h("form", { onsubmit: async (event) => {
      event.preventDefault();
      if (await attempt(() => putEncryption(api, bucket, form.value()))) {
        await render(context, bucket);
        showNotice("Saved the default encryption.");
      }
    } }, ...form.fields, h("button", { type: "submit", id: "save-encryption" }, "Save encryption")),
    h("button", { type: "button", id: "toggle-versioning", onclick: async () => {
      if (await attempt(() => putVersioning(api, bucket, !versioningOn))) {
        await render(context, bucket);
        showNotice(versioningOn ? "Versioning suspended." : "Versioning enabled.");
      }
    } }, versioningOn ? "Suspend versioning" : "Enable versioning"));
}

export async function render(context, bucket) {
  const { api, page, params } = context;
  const prefix = params.get("prefix") ?? "";
  const listing = [];
  const folders = [];
  let token = "";
  // Up to a few pages; the rest behind "more" would need state the hash does not keep.
  for (let page = 0; page < 5; page += 1) {
    const query = [["list-type", "2"], ["delimiter", "/"], ["prefix", prefix]];
    if (token) query.push(["continuation-token", token]);
    const doc = await api.s3Xml("GET", { bucket, query });
    for (const c of doc.getElementsByTagName("Contents")) {
      listing.push({ key: xmlText(c, "Key"), size: xmlText(c, "Size"), modified: xmlText(c, "LastModified") });
    }
    for (const p of doc.getElementsByTagName("CommonPrefixes")) folders.push(xmlText(p, "Prefix"));
    token = xmlText(doc, "NextContinuationToken");
    if (xmlText(doc, "IsTruncated") !== "true" || !token) break;
  }
  const settings = await settingsPanel(context, bucket);

  const crumbs = [h("a", { href: bucketHash(bucket, "") }, bucket)];
  let walked = "";
  for (const part of prefix.split("/").filter(Boolean)) {
    walked += `${part}/`;
    crumbs.push(" / ", h("a", { href: bucketHash(bucket, walked) }, part));
  }

  const rows = [
    ...folders.map((folder) => [h("a", { href: bucketHash(bucket, folder), class: "folder" }, folder.slice(prefix.length)), "", "", ""]),
    ...listing.map((object) => [
      h("span", { class: "object-name" }, object.key.slice(prefix.length)),
      formatBytes(object.size),
      formatDate(object.modified),
      h("span", { class: "row-actions" },
        h("button", { type: "button", class: "details", "data-key": object.key,
          onclick: () => showProtection(context, bucket, object.key) }, "Protection"),
        h("button", { type: "button", class: "download", "data-key": object.key, onclick: async () => {
          const size = await attempt(() => download(api, bucket, object.key));
          if (size !== undefined) showNotice(`Downloaded ${object.key} (${formatBytes(size)}).`);
        } }, "Download"),
        h("button", { type: "button", class: "danger delete", "data-key": object.key, onclick: async () => {
          if (!confirm(`Delete ${object.key}?`)) return;
          if (await attempt(() => api.s3("DELETE", { bucket, key: object.key }))) {
            await render(context, bucket);
            showNotice(`Deleted ${object.key}.`);
          }
        } }, "Delete")),
    ]),
  ];

  const files = h("input", { type: "file", id: "upload-file", multiple: true });
  const progress = h("div", { id: "upload-progress" });
  const upload = h("form", { id: "upload", class: "panel", onsubmit: async (event) => {
    event.preventDefault();
    const chosen = Array.from(files.files);
    if (!chosen.length) return;
    for (const file of chosen) {
      const key = prefix + file.name;
      const bar = h("progress", { max: file.size || 1, value: 0 });
      const label = h("span", {}, `${key}: 0 %`);
      progress.append(h("div", { class: "upload-row" }, bar, label));
      try {
        await api.upload(bucket, key, file, (sent, total) => {
          bar.value = sent;
          label.textContent = `${key}: ${total ? Math.floor((100 * sent) / total) : 100} %`;
        });
      } catch (error) {
        showError(error);
        return;
      }
    }
    await render(context, bucket);
    // The new listing keeps this upload's finished progress bars in view.
    document.getElementById("upload-progress")?.replaceWith(progress);
    const last = prefix + chosen[chosen.length - 1].name;
    showNotice(`Uploaded ${chosen.map((f) => f.name).join(", ")}.`);
    await showProtection(context, bucket, last);
  } }, h("h2", {}, "Upload"), files, h("button", { type: "submit", id: "upload-button" }, "Upload"), progress);

  replace(page,
    h("p", {}, h("a", { href: "#/buckets" }, "← Buckets")),
    h("h1", {}, "Bucket ", h("span", { id: "bucket-name" }, bucket)),
    settings,
    h("p", { class: "crumbs" }, crumbs),
    table(["Name", "Size", "Modified", ""], rows, { id: "objects" }),
    token ? h("p", {}, "More objects follow; narrow the prefix to see them.") : null,
    upload,
    h("section", { id: "object-details", class: "panel", hidden: true }));
}
