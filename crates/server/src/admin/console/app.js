// The tollgate console: reads /console/api/overview and /metrics every few seconds and fills
// the tables. Every value is set with textContent, never as HTML.
"use strict";

const REFRESH_MS = 3000;
let previous = null; // the last /metrics sample, for rates and p99 over the interval

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function fill(id, rows, render) {
  const body = document.getElementById(id);
  body.replaceChildren();
  for (const item of rows) {
    const row = document.createElement("tr");
    render(row, item);
    body.appendChild(row);
  }
  if (rows.length === 0) {
    const row = document.createElement("tr");
    cell(row, "none", "muted");
    body.appendChild(row);
  }
}

function time(secs) {
  return secs ? new Date(secs * 1000).toISOString().replace(".000Z", "Z") : "never";
}

function span(secs) {
  if (secs === null || secs === undefined) return "";
  const s = Math.max(0, Math.round(secs));
  if (s >= 86400) return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
  if (s >= 3600) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
  if (s >= 60) return Math.floor(s / 60) + "m " + (s % 60) + "s";
  return s + "s";
}

function renderOverview(data) {
  fill("routes", data.routes, (row, r) => {
    cell(row, r.name);
    cell(row, r.prefix);
    cell(row, r.host || "any");
    const rules = [r.policy];
    if (r.services.length) rules.push("services: " + r.services.join(", "));
    if (r.roles.length) rules.push("roles: " + r.roles.join(", "));
    cell(row, rules.join("; "));
    cell(row, r.credentials);
    cell(row, r.upstream);
    cell(row, r.vendor_credential || "");
  });
  fill("issuers", data.issuers, (row, i) => {
    cell(row, i.name);
    cell(row, i.iss);
    cell(row, i.algorithms.join(", "));
    cell(row, i.keys.map((k) => (k.kid || "(no kid)") + ": " + k.algorithm).join("; ") || "none");
    cell(row, i.jwks_url ? i.jwks_url + " (last fetched " + (i.jwks_last_success ? span(data.now - i.jwks_last_success) + " ago" : "never") + ")" : "");
  });
  fill("providers", data.providers, (row, p) => {
    cell(row, p.name + (p.required ? " (required)" : ""));
    cell(row, p.state, p.state === "valid" ? "ok" : p.state === "failed" ? "failed" : "");
    cell(row, p.expires_at ? span(p.expires_at - Date.now() / 1000) : "");
    cell(row, p.error || "");
  });
  const tokensError = document.getElementById("tokens-error");
  tokensError.hidden = !data.service_tokens_error;
  tokensError.textContent = data.service_tokens_error || "";
  fill("tokens", data.service_tokens, (row, t) => {
    if (t.expiring_soon > 0) row.className = "expiring";
    cell(row, t.service + (t.registered ? "" : " (unlisted)"));
    cell(row, t.tokens_in_use, "num");
    cell(row, time(t.last_seen), "time");
    cell(row, t.expiring_soon, "num");
    cell(row, t.next_expiry ? time(t.next_expiry) + " (in " + span(t.next_expiry - data.now) + ")" : "", "time");
    const revoked = [];
    if (t.service_revoked_at) revoked.push("service at " + time(t.service_revoked_at));
    if (t.revoked_tokens) revoked.push(t.revoked_tokens + " token(s) seen");
    cell(row, revoked.join(", ") || "-");
  });
  fill("limited", data.limited, (row, l) => {
    cell(row, l.caller);
    cell(row, l.route);
    cell(row, l.limit);
    cell(row, l.refused, "num");
    cell(row, time(l.last_at), "time");
    cell(row, l.last_request_id);
  });
  fill("refusals", data.refusals.slice(0, 50), (row, r) => {
    cell(row, time(r.at), "time");
    cell(row, r.route);
    cell(row, r.status, "num");
    cell(row, r.reason);
    cell(row, r.request_id);
  });
}

// Prometheus text format: one sample per line, `name{labels} value`.
function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    for (const pair of (m[2] || "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]] = pair[2];
    }
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

function sum(samples, name, route, extra) {
  return samples
    .filter((s) => s.name === name && s.labels.route === route && (!extra || extra(s)))
    .reduce((total, s) => total + s.value, 0);
}

function p99(samples, before, route) {
  // Bucket counts over the interval; the first bucket whose count reaches 99% of the total.
  const buckets = samples.filter((s) => s.name === "tollgate_request_duration_seconds_bucket" && s.labels.route === route);
  const old = (le) => (before ? sum(before, "tollgate_request_duration_seconds_bucket", route, (s) => s.labels.le === le) : 0);
  const counts = buckets.map((b) => ({ le: b.labels.le, count: b.value - old(b.labels.le) }));
  const total = counts.length ? counts[counts.length - 1].count : 0;
  if (total <= 0) return "";
  const hit = counts.find((c) => c.count >= total * 0.99);
  return hit ? (hit.le === "+Inf" ? "> max bucket" : "≤ " + (Number(hit.le) * 1000).toPrecision(3) + " ms") : "";
}

// Requests that matched no route are counted under the route label "-": they have no auth
// decision, so their refusals are told by status.
const NO_ROUTE = "-";

function renderTraffic(samples, seconds) {
  const routes = [...new Set(samples.filter((s) => s.name === "tollgate_requests_total").map((s) => s.labels.route))];
  fill("traffic", routes, (row, route) => {
    const total = sum(samples, "tollgate_requests_total", route);
    const before = previous ? sum(previous.samples, "tollgate_requests_total", route) : total;
    const rate = seconds > 0 ? (total - before) / seconds : 0;
    const refused = {};
    let allowed = 0;
    if (route === NO_ROUTE) {
      for (const s of samples.filter((s) => s.name === "tollgate_requests_total" && s.labels.route === route)) {
        refused[s.labels.status] = (refused[s.labels.status] || 0) + s.value;
      }
    } else {
      for (const s of samples.filter((s) => s.name === "tollgate_auth_decisions_total" && s.labels.route === route)) {
        if (s.labels.result === "allowed") allowed += s.value;
        else refused[s.labels.result] = (refused[s.labels.result] || 0) + s.value;
      }
    }
    cell(row, route === NO_ROUTE ? "(no route)" : route);
    cell(row, rate.toFixed(1), "num");
    cell(row, p99(samples, previous && previous.samples, route), "time");
    cell(row, route === NO_ROUTE ? "-" : allowed, "num");
    cell(row, Object.entries(refused).filter(([, v]) => v > 0).map(([k, v]) => k + ": " + v).join(", ") || "0");
  });
}

async function refresh() {
  try {
    const [overview, metrics] = await Promise.all([
      fetch("/console/api/overview", { credentials: "same-origin" }).then((r) => r.json()),
      fetch("/metrics", { credentials: "same-origin" }).then((r) => r.text()),
    ]);
    renderOverview(overview);
    const now = Date.now();
    const samples = parseMetrics(metrics);
    renderTraffic(samples, previous ? (now - previous.at) / 1000 : 0);
    previous = { at: now, samples };
    document.getElementById("updated").textContent = "updated " + new Date(now).toLocaleTimeString();
  } catch (e) {
    document.getElementById("updated").textContent = "update failed: " + e;
  }
}

async function explain(event) {
  event.preventDefault();
  const value = (id) => document.getElementById(id).value;
  const response = await fetch("/console/api/explain", {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/json", "x-tollgate-console": "1" },
    body: JSON.stringify({
      method: value("explain-method"),
      target: value("explain-target"),
      token: value("explain-token"),
      headers: value("explain-headers"),
    }),
  });
  // The token is not kept on the page once it has been explained.
  document.getElementById("explain-token").value = "";
  const result = await response.json();
  const verdict = document.getElementById("explain-verdict");
  if (!response.ok) {
    verdict.textContent = "error: " + result.error;
    verdict.className = "failed";
    return;
  }
  verdict.textContent = result.verdict === "allowed"
    ? "allowed"
    : "refused: " + result.refusal.status + " " + result.refusal.error + (result.refusal.reason ? " (" + result.refusal.reason + ")" : "");
  verdict.className = result.verdict === "allowed" ? "ok" : "failed";
  fill("explain-steps", result.steps, (row, step) => {
    cell(row, step.result, step.result === "failed" ? "failed" : step.result === "ok" ? "ok" : "muted");
    cell(row, step.step);
    cell(row, step.detail);
  });
  const send = document.getElementById("explain-send");
  if (result.would_send) {
    const lines = [result.would_send.request_line];
    for (const h of result.would_send.headers) lines.push(h.name + ": " + h.value + (h.origin === "set" ? "   (set by tollgate)" : ""));
    if (result.would_send.note) lines.push(result.would_send.note + "   (added when sending)");
    if (result.would_send.removed.length) lines.push("removed: " + result.would_send.removed.join(", "));
    send.textContent = lines.join("\n");
  } else {
    send.textContent = "";
  }
}

document.getElementById("explain-form").addEventListener("submit", explain);
refresh();
setInterval(refresh, REFRESH_MS);
