// The console's client for Coffer's three APIs on this origin: S3 (XML), the
// KMS (AWS JSON protocol, X-Amz-Target) and the admin API (JSON under
// /_coffer/admin/). Every request is signed with the signed-in credentials,
// so the server authenticates and authorizes it like any other client's.

import { EMPTY_SHA256, UNSIGNED_PAYLOAD, canonicalQuery, sha256Hex, sign, uriEncode } from "./sigv4.js";

const ADMIN_PREFIX = "/_coffer/admin/";
/** Files up to this size go up in one PUT; larger ones as a multipart upload. */
export const MULTIPART_THRESHOLD = 16 * 1024 * 1024;
/** The size of each part of a multipart upload (S3's minimum is 5 MiB). */
export const PART_SIZE = 8 * 1024 * 1024;

/** A refusal from the server, with the code and message of its error body. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || `HTTP${status}`;
  }

  toString() {
    return `${this.code}: ${this.message}`;
  }
}

/** The first element named `name` under `node`, as text ("" if absent). */
export function xmlText(node, name) {
  return node.getElementsByTagName(name)[0]?.textContent ?? "";
}

/** The parsed XML document of a response body. */
export function parseXml(text) {
  return new DOMParser().parseFromString(text, "application/xml");
}

/** The error an S3 or admin response carries: its XML Code and Message. */
function s3Error(status, text, headers) {
  if (text && text.trimStart().startsWith("<")) {
    const doc = parseXml(text);
    const code = xmlText(doc, "Code");
    if (code) return new ApiError(status, code, xmlText(doc, "Message"));
  }
  // HEAD has no body: the code, if any, is in a header.
  const code = headers?.get("x-amz-error-code") ?? "";
  return new ApiError(status, code, headers?.get("x-amz-error-message") ?? text.trim());
}

/** The path of a bucket or object, encoded once (as it is signed). */
export function objectPath(bucket, key) {
  if (!bucket) return "/";
  return key === undefined ? `/${uriEncode(bucket)}` : `/${uriEncode(bucket)}/${uriEncode(key, true)}`;
}

export class Coffer {
  /** `credentials`: { accessKeyId, secretAccessKey, region }, kept in memory only. */
  constructor(credentials) {
    this.credentials = credentials;
  }

  /** Forgets the secret (sign-out). */
  forget() {
    this.credentials.secretAccessKey = "";
    this.credentials = null;
  }

  async signed(method, path, { query = [], headers = {}, body, payloadHash, service = "s3" } = {}) {
    const queryString = canonicalQuery(query);
    const hash = payloadHash ?? (body === undefined ? EMPTY_SHA256 : await sha256Hex(body));
    const signedHeaders = await sign({
      method, path, query: queryString, headers, payloadHash: hash,
      credentials: this.credentials, service,
    });
    const url = queryString ? `${path}?${queryString}` : path;
    return { url, headers: signedHeaders };
  }

  /** An S3 request; resolves to the Response, throws ApiError on a refusal. */
  async s3(method, { bucket, key, query, headers, body } = {}) {
    const path = objectPath(bucket, key);
    const request = await this.signed(method, path, { query, headers, body });
    const response = await fetch(request.url, { method, headers: request.headers, body, cache: "no-store" });
    if (!response.ok) {
      throw s3Error(response.status, method === "HEAD" ? "" : await response.text(), response.headers);
    }
    return response;
  }

  /** An S3 request whose answer is XML; resolves to the parsed document. */
  async s3Xml(method, options) {
    const response = await this.s3(method, options);
    return parseXml(await response.text());
  }

  /** A KMS operation (e.g. "CreateKey") with its JSON parameters. */
  async kms(operation, parameters = {}) {
    const body = JSON.stringify(parameters);
    const request = await this.signed("POST", "/", {
      service: "kms",
      body,
      headers: {
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": `TrentService.${operation}`,
      },
    });
    const response = await fetch(request.url, { method: "POST", headers: request.headers, body, cache: "no-store" });
    const text = await response.text();
    const answer = text ? JSON.parse(text) : {};
    if (!response.ok) {
      const type = String(answer.__type ?? "").split("#").pop();
      throw new ApiError(response.status, type ? `KMS.${type}` : "", answer.message ?? answer.Message);
    }
    return answer;
  }

  /**
   * An admin API call (`path` under /_coffer/admin/, `query` as [name, value] pairs);
   * resolves to its JSON.
   */
  async admin(method, path, json, query = []) {
    const body = json === undefined ? undefined : JSON.stringify(json);
    const request = await this.signed(method, ADMIN_PREFIX + path, {
      query,
      body,
      headers: body === undefined ? {} : { "content-type": "application/json" },
    });
    const response = await fetch(request.url, { method, headers: request.headers, body, cache: "no-store" });
    const text = await response.text();
    if (!response.ok) throw s3Error(response.status, text, response.headers);
    return text ? JSON.parse(text) : {};
  }

  /**
   * Uploads `file` to bucket/key, reporting progress as onProgress(sentBytes,
   * totalBytes): one PUT up to MULTIPART_THRESHOLD, a multipart upload above.
   */
  async upload(bucket, key, file, onProgress = () => {}) {
    if (file.size <= MULTIPART_THRESHOLD) {
      await this.sendWithProgress("PUT", bucket, key, [], file, (sent) => onProgress(sent, file.size));
      return;
    }
    const created = await this.s3Xml("POST", { bucket, key, query: [["uploads", ""]] });
    const uploadId = xmlText(created, "UploadId");
    const parts = [];
    try {
      let done = 0;
      for (let offset = 0, number = 1; offset < file.size; offset += PART_SIZE, number += 1) {
        const part = file.slice(offset, offset + PART_SIZE);
        const xhr = await this.sendWithProgress(
          "PUT", bucket, key, [["partNumber", String(number)], ["uploadId", uploadId]], part,
          (sent) => onProgress(done + sent, file.size));
        done += part.size;
        parts.push(`<Part><PartNumber>${number}</PartNumber><ETag>${xhr.getResponseHeader("ETag")}</ETag></Part>`);
      }
      const body = `<CompleteMultipartUpload>${parts.join("")}</CompleteMultipartUpload>`;
      const completed = await this.s3("POST", { bucket, key, query: [["uploadId", uploadId]], body });
      // CompleteMultipartUpload can fail with 200 and an error document.
      const text = await completed.text();
      if (xmlText(parseXml(text), "Code")) throw s3Error(500, text);
    } catch (error) {
      await this.s3("DELETE", { bucket, key, query: [["uploadId", uploadId]] }).catch(() => {});
      throw error;
    }
  }

  /** A PUT of `body` through XMLHttpRequest, whose upload events give progress. */
  async sendWithProgress(method, bucket, key, query, body, onProgress) {
    const request = await this.signed(method, objectPath(bucket, key), { query, payloadHash: UNSIGNED_PAYLOAD });
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(method, request.url);
      for (const [name, value] of Object.entries(request.headers)) xhr.setRequestHeader(name, value);
      xhr.upload.onprogress = (event) => onProgress(event.loaded);
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) {
          onProgress(body.size);
          resolve(xhr);
        } else {
          reject(s3Error(xhr.status, xhr.responseText));
        }
      };
      xhr.onerror = () => reject(new ApiError(0, "NetworkError", "The upload could not reach the server."));
      xhr.send(body);
    });
  }
}
