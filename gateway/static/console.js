// The lakehouse console: plain JavaScript, no build step, nothing fetched from outside the gateway.
// Every call goes through the stack's public API with the same Bearer token any client uses.
"use strict";

const TOKEN_KEY = "lakehouse.token";
const REFRESH_MS = 5000;
const SQL_ROWS_SHOWN = 1000;
const INGEST_TYPES = { csv: "text/csv", ndjson: "application/x-ndjson", jsonl: "application/x-ndjson",
                       parquet: "application/vnd.apache.parquet" };

const $ = (selector) => document.querySelector(selector);

function storedToken() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

function withAuth(headers) {
  const all = Object.assign({}, headers || {});
  const token = storedToken();
  if (token) all.Authorization = "Bearer " + token;
  return all;
}

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

function errorFromBody(status, statusText, text) {
  try {
    const body = JSON.parse(text);
    if (body && body.error) return new ApiError(status, body.error.code, body.error.message);
  } catch (_) { /* not the stack's error shape: fall through to the status line */ }
  return new ApiError(status, "http_" + status, status + " " + statusText);
}

function notice(text) {
  const box = $("#notice");
  box.textContent = text || "";
  box.hidden = !text;
}

function askForToken(error) {
  $("#signin").hidden = false;
  notice(storedToken() ? "The token was refused: " + error.message
                       : "This stack requires its token: " + error.message);
  $("#token").focus();
}

// fetch with the token; a 401 asks for the token, any error becomes an ApiError with the API's message.
async function api(path, options = {}, okStatuses = []) {
  let response;
  try {
    response = await fetch(path, Object.assign({}, options, { headers: withAuth(options.headers) }));
  } catch (error) {
    throw new ApiError(0, "unreachable", "the gateway could not be reached (" + error.message + ")");
  }
  if (!response.ok && !okStatuses.includes(response.status)) {
    const error = errorFromBody(response.status, response.statusText, await response.text());
    if (response.status === 401) askForToken(error);
    throw error;
  }
  return response;
}

async function apiJson(path, options, okStatuses) { return (await api(path, options, okStatuses)).json(); }

function postJson(path, body) {
  return { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
}

function cell(row, value, tag = "td") {
  const element = document.createElement(tag);
  element.textContent = value === null || value === undefined ? "" : String(value);
  row.appendChild(element);
  return element;
}

function fillBody(table, rows, emptyText, columns) {
  const body = table.tBodies[0] || table.appendChild(document.createElement("tbody"));
  body.replaceChildren();
  if (rows.length === 0) {
    const row = body.insertRow();
    cell(row, emptyText).colSpan = columns;
    return body;
  }
  for (const values of rows) {
    const row = body.insertRow();
    values.forEach((value) => cell(row, value));
  }
  return body;
}

function shown(value) {
  if (value === null || value === undefined) return "NULL";
  return typeof value === "object" ? JSON.stringify(value) : value;
}

// ---- Overview ------------------------------------------------------------------------------------------

let previousScrape = null;

function parseFamilyCounters(text) {
  // Samples of any *_requests_total counter that carries a family label: family -> {requests, errors}.
  const families = {};
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const match = line.match(/^(\w+_requests_total)\{([^}]*)\}\s+([0-9.eE+-]+)/);
    if (!match) continue;
    const labels = Object.fromEntries([...match[2].matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (!labels.family) continue;
    const entry = families[labels.family] || (families[labels.family] = { requests: 0, errors: 0 });
    const value = Number(match[3]);
    entry.requests += value;
    if ((labels.status || labels.code || "").startsWith("5")) entry.errors += value;
  }
  return families;
}

async function refreshHealth() {
  const report = await apiJson("/v1/health", {}, [503]);
  $("#health-summary").textContent = report.status;
  const rows = Object.entries(report.services).map(([name, s]) =>
    [name, s.status, s.latency_ms.toFixed(1), s.detail || ""]);
  const body = fillBody($("#health"), rows, "no upstreams configured", 4);
  for (const row of body.rows) row.cells[1].className = "status-" + row.cells[1].textContent;
}

async function refreshTraffic() {
  const text = await (await api("/metrics")).text();
  const now = performance.now();
  const families = parseFamilyCounters(text);
  const rows = Object.entries(families).sort().map(([family, counts]) => {
    let rate = "";
    if (previousScrape && previousScrape.families[family]) {
      const seconds = (now - previousScrape.at) / 1000;
      rate = ((counts.requests - previousScrape.families[family].requests) / seconds).toFixed(2);
    }
    const errorRate = counts.requests ? (100 * counts.errors / counts.requests).toFixed(1) + "%" : "";
    return [family, counts.requests, rate, counts.errors, errorRate];
  });
  previousScrape = { at: now, families };
  fillBody($("#traffic"), rows, "no requests through the gateway yet", 5);
}

async function refreshProviders() {
  const listing = await apiJson("/v1/chat/providers");
  const rows = listing.providers.map((p) =>
    [p.name, p.default ? "yes" : "", p.requests ?? "", p.errors ?? "", p.cooldown_until ?? "—"]);
  fillBody($("#providers"), rows, "no provider registered", 5);
}

async function refreshOverview() {
  const results = await Promise.allSettled([refreshHealth(), refreshTraffic(), refreshProviders()]);
  const failed = results.find((r) => r.status === "rejected" && r.reason.status !== 401);
  if (failed) notice("Overview: " + failed.reason.message);
}

function initOverview() {
  refreshOverview();
  setInterval(refreshOverview, REFRESH_MS);
}

// ---- Datasets ------------------------------------------------------------------------------------------

async function showDataset(name) {
  const [manifest, versions] = await Promise.all([
    apiJson("/v1/catalog/datasets/" + encodeURIComponent(name)),
    apiJson("/v1/catalog/datasets/" + encodeURIComponent(name) + "/versions"),
  ]);
  $("#dataset-detail").hidden = false;
  $("#detail-title").textContent = name;
  fillBody($("#schema"), manifest.schema.map((c) => [c.name, c.type, c.nullable ? "yes" : "no"]), "no columns", 3);
  fillBody($("#versions"), versions.versions.map((v) => [v.version, v.mode, v.rows, v.bytes, v.created_at]),
           "no versions", 5);
}

async function loadDatasets() {
  const listing = await apiJson("/v1/catalog/datasets");
  const body = fillBody($("#datasets"), [], "no datasets yet: upload a CSV below", 5);
  if (listing.datasets.length) body.replaceChildren();
  for (const d of listing.datasets) {
    const row = body.insertRow();
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    button.textContent = d.name;
    button.addEventListener("click", () => showDataset(d.name).catch((e) => notice(e.message)));
    row.insertCell().appendChild(button);
    if (d.error) {
      // Its manifest cannot be read: say why across the columns it cannot fill.
      cell(row, d.version);
      cell(row, "unreadable: " + d.error).colSpan = 3;
      continue;
    }
    [d.version, d.rows, d.bytes, d.updated_at].forEach((value) => cell(row, value));
  }
}

function uploadFile(file, dataset, mode) {
  const extension = file.name.split(".").pop().toLowerCase();
  const progress = $("#upload-progress");
  const result = $("#upload-result");
  progress.hidden = false;
  progress.value = 0;
  result.textContent = "Uploading " + file.name + "…";
  const request = new XMLHttpRequest();
  request.open("POST", "/v1/ingest/" + encodeURIComponent(dataset) + "?mode=" + encodeURIComponent(mode));
  request.setRequestHeader("Content-Type", INGEST_TYPES[extension] || "text/csv");
  const token = storedToken();
  if (token) request.setRequestHeader("Authorization", "Bearer " + token);
  request.upload.addEventListener("progress", (event) => {
    if (event.lengthComputable) progress.value = Math.round((100 * event.loaded) / event.total);
  });
  request.addEventListener("load", () => {
    progress.value = 100;
    if (request.status === 201) {
      const body = JSON.parse(request.responseText);
      result.textContent = "Ingested " + body.rows + " rows into " + body.dataset + " (version " + body.version + ").";
      loadDatasets().catch((e) => notice(e.message));
    } else {
      const error = errorFromBody(request.status, request.statusText, request.responseText);
      result.textContent = "Upload failed: " + error.message;
      if (request.status === 401) askForToken(error);
    }
  });
  request.addEventListener("error", () => { result.textContent = "Upload failed: the gateway could not be reached."; });
  request.send(file);
}

async function runSql(text) {
  const status = $("#sql-status");
  const table = $("#sql-result");
  status.textContent = "Running…";
  table.replaceChildren();
  try {
    const result = await apiJson("/v1/sql", postJson("/v1/sql", { sql: text, max_rows: SQL_ROWS_SHOWN }));
    const head = table.createTHead().insertRow();
    result.columns.forEach((c) => { cell(head, c.name, "th").scope = "col"; });
    fillBody(table, result.rows.map((row) => row.map(shown)), "no rows", result.columns.length);
    status.textContent = result.row_count + " row(s) in " + result.duration_ms + " ms" +
      (result.truncated ? " (first " + SQL_ROWS_SHOWN + " shown)" : "");
  } catch (error) {
    status.textContent = "Error: " + error.message;
  }
}

function initDatasets() {
  loadDatasets().catch((e) => { if (e.status !== 401) notice("Datasets: " + e.message); });
  $("#upload-form").addEventListener("submit", (event) => {
    event.preventDefault();
    uploadFile($("#upload-file").files[0], $("#upload-dataset").value, $("#upload-mode").value);
  });
  $("#sql-form").addEventListener("submit", (event) => {
    event.preventDefault();
    runSql($("#sql-text").value);
  });
}

// ---- Chat ----------------------------------------------------------------------------------------------

async function loadModels() {
  const listing = await apiJson("/v1/models");
  const select = $("#chat-model");
  select.replaceChildren();
  for (const model of listing.data) {
    const option = document.createElement("option");
    option.value = option.textContent = model.id;
    select.appendChild(option);
  }
}

async function streamChat(model, prompt) {
  const answer = $("#chat-answer");
  const status = $("#chat-status");
  answer.textContent = "";
  status.textContent = "Waiting for " + model + "…";
  const response = await api("/v1/chat/completions",
    postJson("", { model, messages: [{ role: "user", content: prompt }], stream: true }));
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffered.indexOf("\n\n")) >= 0) {
      const event = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") { status.textContent = "Done (" + model + ")."; return; }
        const chunk = JSON.parse(data);
        if (chunk.error) throw new ApiError(0, chunk.error.code, chunk.error.message);
        for (const choice of chunk.choices || []) {
          if (choice.delta && choice.delta.content) answer.textContent += choice.delta.content;
        }
        status.textContent = "Streaming from " + (response.headers.get("X-Lakehouse-Model") || model) + "…";
      }
    }
  }
  status.textContent = "The stream ended early.";
}

function initChat() {
  loadModels().catch((e) => { if (e.status !== 401) notice("Models: " + e.message); });
  $("#chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    streamChat($("#chat-model").value, $("#chat-prompt").value)
      .catch((error) => { $("#chat-status").textContent = "Error: " + error.message; });
  });
}

// ---- Vectors -------------------------------------------------------------------------------------------

async function loadIndexes() {
  const listing = await apiJson("/v1/vectors");
  const indexes = Array.isArray(listing) ? listing : listing.indexes || [];
  const body = fillBody($("#indexes"), [], "no indexes yet", 5);
  if (indexes.length) body.replaceChildren();
  for (const index of indexes) {
    const row = body.insertRow();
    const box = document.createElement("input");
    box.type = "checkbox";
    box.className = "corpus";
    box.value = index.name;
    box.checked = true;
    box.setAttribute("aria-label", "search " + index.name);
    row.insertCell().appendChild(box);
    [index.name, index.dimensions, index.metric, index.count].forEach((value) => cell(row, value));
  }
}

async function search(text, k) {
  const corpora = [...document.querySelectorAll("input.corpus:checked")].map((box) => box.value);
  const status = $("#search-status");
  const table = $("#matches");
  table.replaceChildren();
  if (!corpora.length) { status.textContent = "Check at least one index."; return; }
  status.textContent = "Searching…";
  try {
    const result = await apiJson("/v1/matrix/search", postJson("", { query: text, corpora, k }));
    const head = table.createTHead().insertRow();
    ["corpus", "id", "score", "metadata"].forEach((name) => { cell(head, name, "th").scope = "col"; });
    fillBody(table, result.matches.map((m) => [m.corpus, m.id, m.score.toFixed(4), JSON.stringify(m.metadata || {})]),
             "no matches", 4);
    const errors = Object.entries(result.errors || {}).map(([corpus, message]) => corpus + ": " + message);
    status.textContent = result.matches.length + " match(es)" + (errors.length ? "; failed: " + errors.join("; ") : "");
  } catch (error) {
    status.textContent = "Error: " + error.message;
  }
}

function initVectors() {
  loadIndexes().catch((e) => { if (e.status !== 401) notice("Indexes: " + e.message); });
  $("#search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    search($("#search-text").value, Number($("#search-k").value));
  });
}

// ---- Keys ----------------------------------------------------------------------------------------------

function words(text) { return text.split(/[\s,]+/).filter(Boolean); }

function ofLimit(used, limit) {
  if (used === null || used === undefined) return "";
  return limit === null || limit === undefined ? String(used) : used + " / " + limit;
}

async function keyUsage(key) {
  try {
    return await apiJson("/v1/keys/" + encodeURIComponent(key.id) + "/usage");
  } catch (error) {
    return { error: error.message };
  }
}

function actionButton(label, onClick) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = label;
  button.addEventListener("click", () => onClick().catch((e) => notice(e.message)));
  return button;
}

async function loadKeys() {
  const listing = await apiJson("/v1/keys");
  const usages = await Promise.all(listing.keys.map(keyUsage));
  const body = fillBody($("#keys"), [], "no keys yet: make one below", 8);
  if (listing.keys.length) body.replaceChildren();
  listing.keys.forEach((key, i) => {
    const usage = usages[i];
    const chat = (usage && usage.chat) || {};
    const row = body.insertRow();
    row.dataset.key = key.id;
    const requests = usage.requests ? String(usage.requests.in_period) +
      (key.rpm ? " (" + Math.round(usage.requests.this_minute ?? 0) + " / " + key.rpm + " this minute)" : "") : "";
    const tokens = chat.tokens_in_period !== undefined ? String(chat.tokens_in_period) +
      (key.tpm ? " (" + Math.round(chat.tokens_this_minute ?? 0) + " / " + key.tpm + " this minute)" : "") : "";
    const spend = chat.spend_usd !== undefined ? ofLimit(Number(chat.spend_usd).toFixed(4), key.budget_usd) : "";
    [key.name, key.id, key.scopes.join(" ") + (key.buckets ? " (buckets " + key.buckets.join(", ") + ")" : ""),
     usage.error ? "usage: " + usage.error : requests, tokens, spend, key.expires_at || "never"]
      .forEach((value) => cell(row, value));
    const actions = row.insertCell();
    actions.appendChild(actionButton("Rotate", async () => {
      if (!confirm("Rotate " + key.name + "? Its secret stops working now.")) return;
      showSecret(await apiJson("/v1/keys/" + encodeURIComponent(key.id) + "/rotate", { method: "POST" }), "rotated");
    }));
    actions.appendChild(actionButton("Revoke", async () => {
      if (!confirm("Revoke " + key.name + "? It stops working everywhere within a second.")) return;
      await api("/v1/keys/" + encodeURIComponent(key.id), { method: "DELETE" });
      $("#key-status").textContent = "Revoked " + key.name + ".";
      await loadKeys();
    }));
  });
}

function showSecret(made, verb) {
  $("#key-secret-box").hidden = false;
  $("#key-secret").textContent = made.secret;
  $("#key-copied").textContent = "";
  $("#key-status").textContent = "Key " + made.name + " (" + made.id + ") " + verb + "." +
    (made.signs_s3 ? " Its id and secret sign S3 requests too." : "");
  return loadKeys();
}

function keyTerms() {
  const terms = { name: $("#key-name").value, scopes: words($("#key-scopes").value),
                  budget_period: $("#key-period").value };
  const lists = { buckets: "#key-buckets", models: "#key-models" };
  for (const [field, selector] of Object.entries(lists)) {
    const values = words($(selector).value);
    if (values.length) terms[field] = values;
  }
  const numbers = { rpm: "#key-rpm", tpm: "#key-tpm", budget_usd: "#key-budget" };
  for (const [field, selector] of Object.entries(numbers)) {
    if ($(selector).value !== "") terms[field] = Number($(selector).value);
  }
  if ($("#key-expires").value) terms.expires_at = new Date($("#key-expires").value).toISOString();
  return terms;
}

async function copySecret() {
  const secret = $("#key-secret").textContent;
  try {
    await navigator.clipboard.writeText(secret);
  } catch (_) {
    // No clipboard permission (an http:// page not on localhost): select it for Ctrl+C instead.
    const range = document.createRange();
    range.selectNodeContents($("#key-secret"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    $("#key-copied").textContent = "Selected: press Ctrl+C.";
    return;
  }
  $("#key-copied").textContent = "Copied.";
}

function initKeys() {
  loadKeys().catch((e) => { if (e.status !== 401) notice("Keys: " + e.message); });
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    $("#key-secret-box").hidden = true;
    apiJson("/v1/keys", postJson("", keyTerms()))
      .then((made) => showSecret(made, "made"))
      .catch((error) => { $("#key-status").textContent = "Error: " + error.message; });
  });
  $("#key-copy").addEventListener("click", copySecret);
}

// ---- Start ---------------------------------------------------------------------------------------------

const PAGES = { overview: initOverview, datasets: initDatasets, chat: initChat, vectors: initVectors, keys: initKeys };

function start() {
  const page = document.body.dataset.page;
  $("#signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("#token").value);
    location.reload();
  });
  const signOut = $("#sign-out");
  signOut.hidden = !storedToken();
  signOut.addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); location.reload(); });
  if (document.body.dataset.auth === "required" && !storedToken()) {
    askForToken(new ApiError(401, "unauthorized", "enter it below."));
  }
  PAGES[page]();
}

document.addEventListener("DOMContentLoaded", start);
