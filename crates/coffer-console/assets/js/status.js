// The server's status (its unauthenticated readiness probe, and this
// connection's transport).

import { ApiError } from "./api.js";
import { details, h, replace } from "./ui.js";

export async function render({ page }) {
  const response = await fetch("/health/ready", { cache: "no-store" });
  let answer;
  try {
    answer = await response.json();
  } catch {
    throw new ApiError(response.status, "", "The readiness probe did not answer JSON.");
  }
  const checks = Object.entries(answer.checks ?? {}).map(([part, verdict]) =>
    [part, h("span", { class: `check ${verdict}` }, verdict)]);
  const tls = location.protocol === "https:";
  replace(page,
    h("h1", {}, "Server status"),
    details([
      ["Readiness", h("span", { id: "readiness", class: `check ${response.ok ? "ok" : "failed"}` },
        `${answer.status} (HTTP ${response.status})`)],
      ...checks,
    ], { id: "status" }),
    h("h2", {}, "Transport"),
    details([
      ["This console", `${location.protocol}//${location.host}`],
      ["TLS", tls ? "yes" : "no: plain HTTP (keep the console on loopback, or behind TLS)"],
      ["Server", response.headers.get("server") ?? ""],
    ]),
    h("p", {}, "The HTTPS listener's TLS versions and its certificate's SHA-256 fingerprint are in " +
      "the server's log at start-up."));
}
