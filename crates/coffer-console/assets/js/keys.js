// The KMS keys pages, through the KMS API (the calls `coffer kms` and
// `aws kms` make): list, create (with an alias), and per key: enable/disable,
// rotate now, automatic rotation, rotation history, aliases, schedule and
// cancel deletion; and, for root, which objects the key protects (the admin
// API's `kms/usage`, also counted again in the deletion confirmation).

import { attempt, details, field, formatDate, h, replace, showNotice, table } from "./ui.js";

/** Every key with its metadata and aliases. */
export async function listKeys(api) {
  const [{ Keys: keys = [] }, { Aliases: aliases = [] }] =
    await Promise.all([api.kms("ListKeys"), api.kms("ListAliases")]);
  // A key whose policy does not let the caller describe it is not listed (ListKeys names
  // every key; key policies decide who sees more).
  const described = await Promise.all(keys.map((k) =>
    api.kms("DescribeKey", { KeyId: k.KeyId }).catch((error) => {
      if (error.code === "KMS.AccessDeniedException") return null;
      throw error;
    })));
  return described.filter(Boolean).map(({ KeyMetadata: metadata }) => ({
    ...metadata,
    aliases: aliases.filter((a) => a.TargetKeyId === metadata.KeyId).map((a) => a.AliasName),
  }));
}

/** The customer keys a bucket's SSE-KMS rule may name: { keyId, label }. */
export async function keyChoices(api) {
  const keys = await listKeys(api);
  return keys
    .filter((k) => k.KeyManager !== "AWS" && k.KeyState !== "PendingDeletion")
    .map((k) => ({
      keyId: k.KeyId,
      label: [k.KeyId, k.aliases.join(", "), k.Description, k.KeyState === "Enabled" ? "" : `(${k.KeyState})`]
        .filter(Boolean).join(" — "),
    }));
}

/** The admin API's usage of a key: { objects, bytes, buckets: […], key_versions: […] }. */
const keyUsage = (api, keyId) => api.admin("GET", "kms/usage", undefined, [["key", keyId]]);

/** "N object versions in M buckets (v1: a, v2: b)". */
export function describeUsage(usage) {
  const versions = usage.key_versions.map((v) => `v${v.key_version}: ${v.objects}`).join(", ");
  const buckets = usage.buckets.length;
  return `${usage.objects} object version${usage.objects === 1 ? "" : "s"} in ${buckets} ` +
    `bucket${buckets === 1 ? "" : "s"}${versions ? ` (${versions})` : ""}`;
}

const keyLink = (keyId) => h("a", { href: `#/keys/${encodeURIComponent(keyId)}`, class: "key-link" }, keyId);

export async function render({ api, page, root }) {
  const keys = await listKeys(api);
  const rows = keys.map((k) => [
    keyLink(k.KeyId), k.aliases.join(", "), h("span", { class: `state ${k.KeyState}` }, k.KeyState),
    k.KeySpec, k.KeyManager === "AWS" ? "service" : "customer", k.Description, formatDate(k.CreationDate),
  ]);
  const description = h("input", { id: "new-key-description", name: "description" });
  const alias = h("input", { id: "new-key-alias", name: "alias", placeholder: "alias/…", spellcheck: "false" });
  const spec = h("select", { id: "new-key-spec" },
    h("option", { value: "SYMMETRIC_DEFAULT" }, "SYMMETRIC_DEFAULT (AES-256)"),
    h("option", { value: "SM4" }, "SM4"));
  const form = h("form", { id: "create-key", class: "panel", onsubmit: async (event) => {
    event.preventDefault();
    const created = await attempt(async () => {
      const { KeyMetadata: metadata } = await api.kms("CreateKey", { Description: description.value, KeySpec: spec.value });
      if (alias.value.trim()) await api.kms("CreateAlias", { AliasName: alias.value.trim(), TargetKeyId: metadata.KeyId });
      return metadata;
    });
    if (created) {
      await render({ api, page, root });
      showNotice(`Created key ${created.KeyId}.`);
    }
  } },
  h("h2", {}, "Create a key"), field("Description", description), field("Alias (optional)", alias),
  field("Key spec", spec), h("button", { type: "submit", id: "create-key-button" }, "Create key"));
  replace(page, h("h1", {}, "KMS keys"),
    table(["Key id", "Aliases", "State", "Spec", "Manager", "Description", "Created"], rows, { id: "keys" }),
    root ? form : h("p", {}, "Only root may create or change keys."));
}

export async function renderKey(context, keyId) {
  const { api, page, root } = context;
  const [{ KeyMetadata: key }, { Aliases: aliases = [] }] =
    await Promise.all([api.kms("DescribeKey", { KeyId: keyId }), api.kms("ListAliases", { KeyId: keyId })]);
  const [rotation, history] = await Promise.all([
    api.kms("GetKeyRotationStatus", { KeyId: keyId }).catch(() => null),
    api.kms("ListKeyRotations", { KeyId: keyId }).catch(() => ({ Rotations: [] })),
  ]);
  // A full walk of the object metadata on the server: shown, not blocking the page.
  const usage = h("span", { id: "key-usage" }, root ? "counting…" : "— (root only)");
  if (root) {
    keyUsage(api, keyId).then(
      (counted) => { usage.textContent = describeUsage(counted); },
      (error) => { usage.textContent = `unknown (${error.code || error.message})`; });
  }
  const refresh = (notice) => async () => {
    await renderKey(context, keyId);
    showNotice(notice);
  };
  const act = (label, id, operation, parameters, notice, className) =>
    h("button", { type: "button", id, class: className, onclick: async () => {
      if (await attempt(() => api.kms(operation, { KeyId: keyId, ...parameters }))) await refresh(notice)();
    } }, label);

  const actions = [];
  if (key.KeyState === "Enabled") actions.push(act("Disable", "disable-key", "DisableKey", {}, `Disabled key ${keyId}.`));
  if (key.KeyState === "Disabled") actions.push(act("Enable", "enable-key", "EnableKey", {}, `Enabled key ${keyId}.`));
  if (key.KeyState === "Enabled") actions.push(act("Rotate now", "rotate-key", "RotateKeyOnDemand", {}, `Rotated key ${keyId}.`));
  if (rotation && key.KeyState === "Enabled") {
    actions.push(rotation.KeyRotationEnabled
      ? act("Turn off automatic rotation", "disable-rotation", "DisableKeyRotation", {}, "Automatic rotation is off.")
      : act("Turn on automatic rotation", "enable-rotation", "EnableKeyRotation", {}, "Automatic rotation is on."));
  }
  if (key.KeyState === "PendingDeletion") {
    actions.push(act("Cancel deletion", "cancel-deletion", "CancelKeyDeletion", {}, "Deletion cancelled: the key is disabled."));
  }

  const days = h("input", { type: "number", id: "deletion-days", min: 7, max: 30, value: 30 });
  const deletion = key.KeyState === "PendingDeletion" || key.KeyManager === "AWS" ? null :
    h("form", { class: "panel", id: "schedule-deletion", onsubmit: async (event) => {
      event.preventDefault();
      // Counted again now: objects may have been written since the page was shown.
      const counted = root ? await keyUsage(api, keyId).catch(() => null) : null;
      const protects = !counted ? "It may still protect objects (they could not be counted)."
        : counted.objects ? `It still protects ${describeUsage(counted)}.`
          : "It protects no object.";
      if (!confirm(`Schedule the deletion of ${keyId}? ${protects} Objects sealed under it become ` +
        "unreadable for good once it is deleted.")) return;
      if (await attempt(() => api.kms("ScheduleKeyDeletion", { KeyId: keyId, PendingWindowInDays: Number(days.value) }))) {
        await refresh(`Key ${keyId} is pending deletion.`)();
      }
    } }, h("h2", {}, "Schedule deletion"), field("Waiting period (days, 7–30)", days),
    h("button", { type: "submit", class: "danger" }, "Schedule deletion"));

  const aliasName = h("input", { id: "alias-name", placeholder: "alias/…", spellcheck: "false" });
  const aliasForm = h("form", { class: "panel", id: "add-alias", onsubmit: async (event) => {
    event.preventDefault();
    if (await attempt(() => api.kms("CreateAlias", { AliasName: aliasName.value.trim(), TargetKeyId: keyId }))) {
      await refresh(`Added alias ${aliasName.value.trim()}.`)();
    }
  } }, h("h2", {}, "Add an alias"), field("Alias", aliasName), h("button", { type: "submit" }, "Add alias"));

  const aliasRows = aliases.map((a) => [a.AliasName, h("button", { type: "button", class: "danger", onclick: async () => {
    if (await attempt(() => api.kms("DeleteAlias", { AliasName: a.AliasName }))) await refresh(`Deleted alias ${a.AliasName}.`)();
  } }, "Delete")]);
  const rotationRows = (history.Rotations ?? []).map((r) => [formatDate(r.RotationDate), r.RotationType]);

  replace(page,
    h("p", {}, h("a", { href: "#/keys" }, "← KMS keys")),
    h("h1", {}, `Key ${keyId}`),
    details([
      ["Key id", h("code", { id: "key-id" }, key.KeyId)],
      ["ARN", key.Arn],
      ["State", h("span", { id: "key-state", class: `state ${key.KeyState}` }, key.KeyState)],
      ["Spec", key.KeySpec],
      ["Origin", key.Origin],
      ["Manager", key.KeyManager === "AWS" ? "service" : "customer"],
      ["Description", key.Description],
      ["Created", formatDate(key.CreationDate)],
      ["Deletion date", key.DeletionDate ? formatDate(key.DeletionDate) : "—"],
      ["Automatic rotation", rotation ? (rotation.KeyRotationEnabled ? "on" : "off") : "—"],
      ["Protects", usage],
    ], { id: "key-details" }),
    root ? h("p", {}, h("a", { href: `#/audit?key=${encodeURIComponent(keyId)}`, id: "key-audit" },
      "This key's audit log")) : null,
    h("div", { class: "actions" }, actions),
    h("h2", {}, "Rotation history"),
    table(["Rotated", "Type"], rotationRows, { id: "rotations" }),
    h("h2", {}, "Aliases"),
    table(["Alias", ""], aliasRows, { id: "aliases" }),
    aliasForm, deletion);
}
