// AWS Signature Version 4, computed in the browser with WebCrypto (HMAC-SHA256
// and SHA-256), the same algorithm coffer-auth verifies. The secret key never
// leaves this page: only signatures are sent.

const encoder = new TextEncoder();

/** Hex of the SHA-256 of a string or bytes. */
export async function sha256Hex(data) {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  return hex(await crypto.subtle.digest("SHA-256", bytes));
}

/** The SHA-256 of the empty body, which GET, HEAD and DELETE send. */
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** What a body too large to hash in memory is signed as (TLS or loopback only). */
export const UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD";

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function hmac(key, message) {
  const imported = await crypto.subtle.importKey(
    "raw", typeof key === "string" ? encoder.encode(key) : key,
    { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return crypto.subtle.sign("HMAC", imported, encoder.encode(message));
}

/** RFC 3986 percent-encoding as SigV4 wants it; `/` kept when `keepSlash`. */
export function uriEncode(text, keepSlash = false) {
  const encoded = encodeURIComponent(text).replace(
    /[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
  return keepSlash ? encoded.replace(/%2F/g, "/") : encoded;
}

/** The canonical query string of `[name, value]` pairs: encoded, then sorted. */
export function canonicalQuery(pairs) {
  return pairs
    .map(([name, value]) => [uriEncode(name), uriEncode(value ?? "")])
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join("&");
}

/** `YYYYMMDDTHHMMSSZ` for `date`. */
function amzDate(date) {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

/**
 * Signs a request. `path` is already encoded (it is sent as is); `query` is
 * the canonical query string; `headers` are lower-case names the request
 * will carry, all of which are signed (with `host`, the page's own). Returns
 * the headers to send: `headers` plus x-amz-date, x-amz-content-sha256 and
 * authorization.
 */
export async function sign({ method, path, query, headers, payloadHash, credentials, service, now }) {
  const date = amzDate(now ?? new Date());
  const day = date.slice(0, 8);
  const all = {
    ...headers,
    host: location.host,
    "x-amz-date": date,
    "x-amz-content-sha256": payloadHash,
  };
  const names = Object.keys(all).map((n) => n.toLowerCase()).sort();
  const canonicalHeaders = names
    .map((n) => `${n}:${String(all[n]).trim().replace(/\s+/g, " ")}\n`)
    .join("");
  const signedHeaders = names.join(";");
  const canonicalRequest = [method, path, query, canonicalHeaders, signedHeaders, payloadHash].join("\n");
  const scope = `${day}/${credentials.region}/${service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", date, scope, await sha256Hex(canonicalRequest)].join("\n");
  let key = await hmac("AWS4" + credentials.secretAccessKey, day);
  for (const part of [credentials.region, service, "aws4_request"]) {
    key = await hmac(key, part);
  }
  const signature = hex(await hmac(key, stringToSign));
  delete all.host; // the browser sends it; scripts may not set it
  all.authorization = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, ` +
    `SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return all;
}
