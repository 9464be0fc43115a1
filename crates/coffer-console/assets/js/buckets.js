// The buckets page: list, create (with default encryption, SSE-KMS with a key,
// and versioning), delete. The encryption form is shared with the bucket's own
// page (objects.js), which edits an existing bucket's settings.

import { xmlText } from "./api.js";
import { keyChoices } from "./keys.js";
import { attempt, field, formatDate, h, replace, showNotice, table } from "./ui.js";

const S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/";

/** A bucket's default encryption: { algorithm, keyId, bucketKey } or null (the server's default). */
export async function getEncryption(api, bucket) {
  try {
    const doc = await api.s3Xml("GET", { bucket, query: [["encryption", ""]] });
    return {
      algorithm: xmlText(doc, "SSEAlgorithm"),
      keyId: xmlText(doc, "KMSMasterKeyID"),
      bucketKey: xmlText(doc, "BucketKeyEnabled") === "true",
    };
  } catch (error) {
    if (error.code === "ServerSideEncryptionConfigurationNotFoundError") return null;
    throw error;
  }
}

/** Sets (or, with algorithm "", removes) a bucket's default encryption. */
export async function putEncryption(api, bucket, { algorithm, keyId, bucketKey }) {
  if (!algorithm) {
    await api.s3("DELETE", { bucket, query: [["encryption", ""]] });
    return;
  }
  const key = algorithm === "aws:kms" && keyId ? `<KMSMasterKeyID>${escapeXml(keyId)}</KMSMasterKeyID>` : "";
  const body = `<ServerSideEncryptionConfiguration xmlns="${S3_NS}"><Rule>` +
    `<ApplyServerSideEncryptionByDefault><SSEAlgorithm>${escapeXml(algorithm)}</SSEAlgorithm>${key}` +
    `</ApplyServerSideEncryptionByDefault><BucketKeyEnabled>${bucketKey ? "true" : "false"}</BucketKeyEnabled>` +
    "</Rule></ServerSideEncryptionConfiguration>";
  await api.s3("PUT", { bucket, query: [["encryption", ""]], body });
}

/** "Enabled", "Suspended" or "" (never enabled). */
export async function getVersioning(api, bucket) {
  const doc = await api.s3Xml("GET", { bucket, query: [["versioning", ""]] });
  return xmlText(doc, "Status");
}

export async function putVersioning(api, bucket, enabled) {
  const body = `<VersioningConfiguration xmlns="${S3_NS}"><Status>${enabled ? "Enabled" : "Suspended"}</Status></VersioningConfiguration>`;
  await api.s3("PUT", { bucket, query: [["versioning", ""]], body });
}

export function escapeXml(text) {
  return String(text).replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The default-encryption inputs: algorithm, KMS key, bucket key. Returns
 * { fields, value() } where value() reads { algorithm, keyId, bucketKey }.
 */
export async function encryptionFields(api, current) {
  const algorithm = h("select", { id: "encryption-algorithm", name: "encryption-algorithm" },
    h("option", { value: "" }, "Server default (sealed with the service key)"),
    h("option", { value: "AES256" }, "SSE-S3: AES256 (service key)"),
    h("option", { value: "SM4" }, "SM4 (service key)"),
    h("option", { value: "aws:kms" }, "SSE-KMS: a KMS key"));
  const choices = await keyChoices(api).catch(() => []);
  const keySelect = h("select", { id: "encryption-key", name: "encryption-key" },
    h("option", { value: "" }, "The server's default KMS key"),
    choices.map((choice) => h("option", { value: choice.keyId }, choice.label)));
  const bucketKey = h("input", { type: "checkbox", id: "encryption-bucket-key", name: "encryption-bucket-key" });
  algorithm.value = current?.algorithm ?? "";
  if (current?.keyId && !choices.some((c) => c.keyId === current.keyId)) {
    keySelect.append(h("option", { value: current.keyId }, current.keyId));
  }
  keySelect.value = current?.keyId ?? "";
  bucketKey.checked = Boolean(current?.bucketKey);
  const kmsOnly = [field("KMS key", keySelect), field("Bucket key (fewer KMS calls)", bucketKey)];
  const sync = () => kmsOnly.forEach((f) => { f.hidden = algorithm.value !== "aws:kms"; });
  algorithm.addEventListener("change", sync);
  sync();
  return {
    fields: [field("Default encryption", algorithm), ...kmsOnly],
    value: () => ({ algorithm: algorithm.value, keyId: keySelect.value, bucketKey: bucketKey.checked }),
  };
}

export async function render({ api, page }) {
  const doc = await api.s3Xml("GET");
  const buckets = Array.from(doc.getElementsByTagName("Bucket"), (b) => ({
    name: xmlText(b, "Name"),
    created: xmlText(b, "CreationDate"),
  }));
  const encryption = await encryptionFields(api, null);
  const name = h("input", { id: "new-bucket-name", name: "name", required: true, spellcheck: "false",
    pattern: "[a-z0-9][a-z0-9.\\-]{1,61}[a-z0-9]", title: "3–63 lower-case letters, digits, '.' and '-'" });
  const versioning = h("input", { type: "checkbox", id: "new-bucket-versioning" });
  const form = h("form", { id: "create-bucket", class: "panel", onsubmit: async (event) => {
    event.preventDefault();
    const bucket = name.value.trim();
    const settings = encryption.value();
    const created = await attempt(async () => {
      await api.s3("PUT", { bucket });
      if (settings.algorithm) await putEncryption(api, bucket, settings);
      if (versioning.checked) await putVersioning(api, bucket, true);
      return true;
    });
    if (created) {
      await render({ api, page });
      showNotice(`Created bucket ${bucket}.`);
    }
  } },
  h("h2", {}, "Create a bucket"),
  field("Name", name), ...encryption.fields, field("Versioning", versioning),
  h("button", { type: "submit", id: "create-bucket-button" }, "Create bucket"));

  const rows = buckets.map((bucket) => [
    h("a", { href: `#/buckets/${encodeURIComponent(bucket.name)}`, class: "bucket-link" }, bucket.name),
    formatDate(bucket.created),
    h("button", { type: "button", class: "danger", onclick: async () => {
      if (!confirm(`Delete the bucket ${bucket.name}? It must be empty.`)) return;
      if (await attempt(() => api.s3("DELETE", { bucket: bucket.name }), `Deleted bucket ${bucket.name}.`)) {
        await render({ api, page });
        showNotice(`Deleted bucket ${bucket.name}.`);
      }
    } }, "Delete"),
  ]);
  replace(page, h("h1", {}, "Buckets"), table(["Name", "Created", ""], rows, { id: "buckets" }), form);
}
