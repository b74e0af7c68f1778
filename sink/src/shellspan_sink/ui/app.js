// The shellspan web UI: hash routes, each a view over the sink's HTTP API.
//   #/sessions?user=&host=&component=&shell_type=&state=&since=&until=&tag=&limit=&cursor=
//   #/sessions/<session id>            (with its terminal recording, when it has one: player.js,
//                                       and its shell-state snapshots: snapshots.js)
//   #/sessions/<session id>?seq=N      (opened at command N: highlighted, the player seeks there)
//   #/analytics?user=&host=&component=&shell_type=&since=&until=
//   #/commands?q=&regex=1&...   (command search: search.js)
// Nothing here loads all rows: lists are pages (limit + keyset cursor), analytics are aggregates.
// The sessions list and an open session stay current through the sink's live streams (live.js):
// changed rows arrive and are put in place; the list is not fetched again for them.

import { fmtCount, fmtDuration, fmtPercent, hbars, heatmap, histogram, waterfall } from "./charts.js";
import { annotationsCard, commandsView, focusCommand, setupSearchBox } from "./search.js";
import { follow } from "./live.js";
import { Player, screenView } from "./player.js";
import { snapshotsCard } from "./snapshots.js";

const REFRESH_MS = 5000;
const FILTERS = ["user", "host", "component", "shell_type", "state", "since", "until", "tag"];
const TOKEN_KEY = "shellspan.token";

const $ = (sel) => document.querySelector(sel);

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    node.append(typeof c === "object" ? c : document.createTextNode(String(c)));
  }
  return node;
}

// ---- API ----------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// Sent with every API call, the recording's too: the token, and the access log's door.
function authHeaders() {
  const token = localStorage.getItem(TOKEN_KEY);
  return { "X-Shellspan-Client": "ui", ...(token ? { Authorization: `Bearer ${token}` } : {}) };
}

async function api(path, params = {}) {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") qs.set(k, v);
  const headers = { Accept: "application/json", ...authHeaders() };
  const resp = await fetch(path + (qs.toString() ? `?${qs}` : ""), { headers, cache: "no-store" });
  let body = null;
  try { body = await resp.json(); } catch { body = null; }
  if (!resp.ok) {
    if (resp.status === 401 || resp.status === 403) showTokenForm();
    if (resp.status === 404) return null;
    throw new ApiError(resp.status, (body && body.error) || `${resp.status} ${resp.statusText}`);
  }
  return body;
}

function showTokenForm() { $("#token-form").hidden = false; }

function setupToken() {
  $("#token-button").addEventListener("click", () => { $("#token-form").hidden = !$("#token-form").hidden; });
  $("#token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const value = $("#token-input").value.trim();
    if (value) localStorage.setItem(TOKEN_KEY, value);
    $("#token-input").value = "";
    $("#token-form").hidden = true;
    route();
  });
  $("#token-clear").addEventListener("click", () => { localStorage.removeItem(TOKEN_KEY); route(); });
}

// ---- routing and refresh ------------------------------------------------------------------

let generation = 0;
let timer = null;
let currentPlayer = null; // the session page's terminal player, stopped when the page changes

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/sessions";
  const [path, qs] = raw.split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(qs || "") };
}

export function link(path, params = {}) {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") qs.set(k, v);
  const q = qs.toString();
  return `#${path}${q ? `?${q}` : ""}`;
}

function showError(message) {
  const box = $("#error");
  box.textContent = message || "";
  box.hidden = !message;
}

function setLive(text) {
  const live = $("#live");
  live.textContent = text || "";
  live.hidden = !text;
}

function schedule(fn) {
  clearTimeout(timer);
  const gen = generation;
  timer = setTimeout(async () => {
    if (gen !== generation) return;
    if (document.hidden) { schedule(fn); return; }
    try { await fn(); } catch (err) { showError(String(err.message || err)); }
    if (gen === generation) schedule(fn);
  }, REFRESH_MS);
}

async function route() {
  generation += 1;
  clearTimeout(timer);
  if (currentPlayer) currentPlayer.stop();
  currentPlayer = null;
  setLive("");
  showError("");
  document.body.dataset.loaded = "";
  const { parts, params } = parseHash();
  const view = ["analytics", "commands"].includes(parts[0]) ? parts[0] : parts[0] === "sessions" && parts[1] ? "session" : "sessions";
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.classList.toggle("current", a.dataset.nav === (view === "session" ? "sessions" : view));
  }
  document.body.dataset.view = view;
  const gen = generation;
  try {
    if (view === "analytics") await analyticsView(params, gen);
    else if (view === "commands") await commandsView(ui, params, gen);
    else if (view === "session") await sessionView(parts[1], gen, params);
    else await sessionsView(params, gen);
  } catch (err) {
    if (gen === generation) showError(String(err.message || err));
  }
  if (gen === generation) document.body.dataset.loaded = "1";
}

function mount(gen, ...nodes) {
  if (gen !== generation) return false;
  $("#app").replaceChildren(...nodes.filter((n) => n !== null && n !== undefined));
  return true;
}

// What the views kept in other modules use of this one.
const ui = { h, api, link, mount, localTime: (iso) => localTime(iso), exitBadge: (code) => exitBadge(code),
  isCurrent: (gen) => gen === generation };

// ---- shared pieces ------------------------------------------------------------------------

function localTime(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function stateBadge(state) {
  return h("span", { class: `badge ${state}`, "data-testid": "state" }, state);
}

function exitBadge(code) {
  if (code === null || code === undefined) return h("span", { class: "badge" }, "?");
  return h("span", { class: `badge ${code === 0 ? "ok" : "fail"}`, "data-testid": "exit-code" }, String(code));
}

function filterForm(params, fields, target) {
  const inputs = {};
  const field = (name, label, placeholder) => {
    inputs[name] = h("input", { name, value: params.get(name) || "", placeholder, "data-testid": `filter-${name}` });
    return h("label", {}, label, inputs[name]);
  };
  const nodes = [];
  if (fields.includes("user")) nodes.push(field("user", "user", "any"));
  if (fields.includes("host")) nodes.push(field("host", "host", "any"));
  if (fields.includes("component")) nodes.push(field("component", "component", "any"));
  if (fields.includes("shell_type")) nodes.push(field("shell_type", "shell", "bash, zsh, python…"));
  if (fields.includes("state")) {
    inputs.state = h("select", { name: "state", "data-testid": "filter-state" },
      ["", "active", "ended", "abandoned"].map((v) => h("option", { value: v, selected: params.get("state") === v }, v || "any")));
    nodes.push(h("label", {}, "state", inputs.state));
  }
  if (fields.includes("tag")) nodes.push(field("tag", "tag", "any"));
  nodes.push(field("since", "since", "24h, 7d, 2024-05-01"));
  nodes.push(field("until", "until", "ISO time or age"));
  if (fields.includes("limit")) {
    inputs.limit = h("select", { name: "limit" },
      ["25", "50", "100", "200"].map((v) => h("option", { value: v, selected: (params.get("limit") || "50") === v }, v)));
    nodes.push(h("label", {}, "per page", inputs.limit));
  }
  const form = h("form", { class: "filters", "data-testid": "filters" }, nodes,
    h("button", { type: "submit" }, "Apply"),
    h("a", { href: link(target) }, "clear"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const next = {};
    for (const [k, input] of Object.entries(inputs)) next[k] = input.value.trim();
    if (next.limit === "50") delete next.limit;
    location.hash = link(target, next);
  });
  return form;
}

// ---- sessions list ------------------------------------------------------------------------

// Who a session is: the identity the sink verified first, then a warning when the user name the
// client claimed differs from it; an unverified session shows its claimed name, marked so.
function identityBadges(s) {
  if (!s.verified) {
    return [h("a", { href: link("/sessions", { user: s.user_name }) }, s.user_name || "–"), " ",
      h("span", { class: "badge", "data-testid": "unverified", title: "no verified token: the user name is what the client claimed" }, "unverified")];
  }
  return [h("span", { "data-testid": "verified-identity" }, s.enduser_id), " ",
    h("span", { class: "badge ok", title: "verified by the sink from a token" }, "✓ verified"),
    s.user_mismatch ? [" ", h("span", { class: "badge warn", "data-testid": "claimed-mismatch",
      title: "the user name this session claims differs from its verified identity" }, `claims ${s.user_name || "(none)"}`)] : null];
}

function sessionRow(s) {
  const href = link(`/sessions/${s.session_id}`);
  const tr = h("tr", { class: "clickable", "data-testid": "session-row", "data-session-id": s.session_id, "data-state": s.state, "data-start": s.start_time },
    h("td", {}, stateBadge(s.state)),
    h("td", { class: "mono" }, h("a", { href, "data-testid": "session-link" }, s.session_id.slice(0, 12))),
    h("td", { "data-testid": "session-user" }, identityBadges(s)),
    h("td", {}, h("a", { href: link("/sessions", { host: s.host_name }) }, s.host_name || "–")),
    h("td", {}, s.shell_type || "–"),
    h("td", {}, s.component_name ? `${s.component_name}${s.component_version ? ` ${s.component_version}` : ""}` : ""),
    h("td", { title: s.start_time }, localTime(s.start_time)),
    h("td", { class: "num" }, fmtDuration(s.duration_s)),
    h("td", { class: "num" }, fmtCount(s.command_count)),
    h("td", { class: "num" }, s.failed_count ? h("span", { class: "badge fail" }, String(s.failed_count)) : "0"),
    h("td", {}, s.exit_reason ? `${s.exit_reason}${s.exit_code !== null ? ` (${s.exit_code})` : ""}` : ""),
  );
  tr.addEventListener("click", (ev) => {
    if (ev.target.closest("a")) return;
    location.hash = href;
  });
  return tr;
}

async function sessionsView(params, gen) {
  const filters = {};
  for (const k of FILTERS) if (params.get(k)) filters[k] = params.get(k);
  const limit = params.get("limit") || "50";
  const cursor = params.get("cursor") || "";
  const page = Number(params.get("page") || "1");
  const tbody = h("tbody", { "data-testid": "sessions-body" });
  const pager = h("div", { class: "pager" });
  const summary = h("span", { class: "muted" });

  const load = async () => {
    const data = await api("/api/sessions", { ...filters, limit, cursor });
    if (gen !== generation) return;
    tbody.replaceChildren(...data.sessions.map(sessionRow));
    if (!data.sessions.length) {
      tbody.append(h("tr", {}, h("td", { colspan: 11, class: "empty" },
        Object.keys(filters).length || cursor ? "No sessions match these filters."
          : "No sessions recorded yet. Start a shell with shellspan (see docs/quickstart.md).")));
    }
    const active = data.sessions.filter((s) => s.state === "active").length;
    const first = (page - 1) * Number(limit) + 1;
    summary.textContent = data.sessions.length
      ? `sessions ${fmtCount(first)}–${fmtCount(first + data.sessions.length - 1)}, newest first · ${active} active on this page`
      : "";
    pager.replaceChildren(
      cursor ? h("a", { href: link("/sessions", { ...filters, limit: limit === "50" ? "" : limit }), "data-testid": "newest" }, "« newest") : "",
      data.next_cursor
        ? h("a", { href: link("/sessions", { ...filters, limit: limit === "50" ? "" : limit, cursor: data.next_cursor, page: page + 1 }), "data-testid": "older" }, "older »")
        : h("span", { class: "muted" }, "end of list"),
      summary,
    );
    setLive(`● live · updated ${new Date().toLocaleTimeString()}`);
  };

  // Rows of sessions that changed, from the changes stream: replaced in place, new ones put in
  // order on the first page, those that left the state filter taken out.
  const shown = () => [...tbody.querySelectorAll("[data-testid=session-row]")];
  const apply = async (changed) => {
    let left = false;
    for (const s of changed) {
      const existing = shown().find((tr) => tr.dataset.sessionId === s.session_id);
      const keep = !filters.state || s.state === filters.state;
      if (existing) {
        if (keep) existing.replaceWith(sessionRow(s));
        else { existing.remove(); left = true; }
      } else if (keep && !cursor) {
        const rows = shown();
        const after = rows.find((tr) => tr.dataset.start < s.start_time
          || (tr.dataset.start === s.start_time && tr.dataset.sessionId > s.session_id));
        if (after) after.before(sessionRow(s));
        else if (rows.length < Number(limit)) tbody.append(sessionRow(s));
        for (const tr of shown().slice(Number(limit))) tr.remove();
        tbody.querySelector("td.empty")?.closest("tr").remove();
      }
    }
    if (left && shown().length < Number(limit)) await load();
    const active = shown().filter((tr) => tr.dataset.state === "active").length;
    summary.textContent = summary.textContent.replace(/\d+ active on this page/, `${active} active on this page`);
    setLive(`● live · updated ${new Date().toLocaleTimeString()}`);
  };

  const table = h("table", { "data-testid": "sessions-table" },
    h("thead", {}, h("tr", {}, ["state", "session", "user", "host", "shell", "component", "started (local)", "duration",
      "commands", "failed", "exit"].map((c, i) => h("th", { class: i >= 7 && i <= 9 ? "num" : "" }, c)))),
    tbody);
  if (!mount(gen, h("h1", {}, "Sessions"), filterForm(params, ["user", "host", "component", "shell_type", "state", "tag", "limit"], "/sessions"),
    h("div", { class: "card" }, table, pager))) return;
  await load();
  const live = {};
  for (const k of ["user", "host", "component", "shell_type", "since", "until"]) if (filters[k]) live[k] = filters[k];
  follow("/api/changes", live, {
    isCurrent: () => gen === generation,
    onStatus: (status) => { if (status === "reconnecting") setLive("● live · reconnecting…"); },
    onEvent: (ev) => {
      if (ev.kind === "ready" || ev.kind === "reset") load().catch((err) => showError(String(err.message || err)));
      else if (ev.kind === "sessions") apply(ev.data.sessions).catch((err) => showError(String(err.message || err)));
    },
  });
}

// ---- one session --------------------------------------------------------------------------

function metaItem(label, value) {
  if (value === null || value === undefined || value === "") return null;
  return h("div", {}, h("dt", {}, label), h("dd", {}, value));
}

// The recording card lives as long as the page shows the session: re-renders move it, so the
// player keeps playing while an active session refreshes.
function recordingPanel(id) {
  const root = h("div", { class: "player", "data-testid": "player" });
  const screenCard = h("div", { class: "card", "data-testid": "screen-card", hidden: true });
  const player = new Player(root, id, authHeaders);
  const started = player.start().catch((err) => { if (err.name !== "AbortError") showError(String(err.message || err)); });
  currentPlayer = player;
  const card = h("div", { class: "card", "data-testid": "recording-card" },
    h("h2", {}, "Terminal recording"),
    h("p", { class: "muted" }, "Click a command in the timeline or the table to jump to it; its \"screen\" shows the terminal when it ended."),
    root);
  const seek = (seq) => {
    for (const row of document.querySelectorAll("[data-testid=command-row]")) row.classList.toggle("current", Number(row.dataset.seq) === seq);
    card.scrollIntoView({ block: "nearest" });
    player.seekToCommand(seq);
  };
  const showScreen = async (seq) => {
    screenCard.replaceChildren(h("p", { class: "muted" }, `Replaying the recording to the end of command #${seq}…`));
    screenCard.dataset.seq = "";
    screenCard.hidden = false;
    const screen = await api(`/api/sessions/${encodeURIComponent(id)}/screen`, { seq, cells: 1 });
    if (!screen) {
      screenCard.replaceChildren(h("p", { class: "empty" }, `Nothing was recorded by the end of command #${seq}.`));
    } else {
      screenCard.replaceChildren(
        h("h2", {}, `Screen when command #${seq} ended `, h("span", { class: "mono" }, screen.command)),
        h("p", { class: "muted" }, `${screen.columns}×${screen.lines}, exit ${screen.exit_code ?? "?"} · `,
          h("button", { type: "button", class: "link", onclick: () => { screenCard.hidden = true; } }, "close")),
        screenView(screen));
    }
    screenCard.dataset.seq = String(seq);
    screenCard.hidden = false;
    screenCard.scrollIntoView({ block: "nearest" });
  };
  // Opened at a command (a search hit): the player starts there once it has loaded.
  const startAt = async (seq) => { await started; await player.seekToCommand(seq); };
  return { card, screenCard, seek, showScreen, startAt };
}

async function sessionView(id, gen, params) {
  const recording = recordingPanel(id); // its recording loads while the session does
  const data = await api(`/api/sessions/${encodeURIComponent(id)}`);
  if (gen !== generation) return;
  if (!data) {
    mount(gen, h("h1", {}, "Session not found"), h("p", {}, `No session ${id} in the store. `, h("a", { href: link("/sessions") }, "All sessions")));
    return;
  }
  const render = (d) => {
    const s = d.session;
    const attrs = s.attributes || {};
    const startMs = Date.parse(s.start_time);
    const endMs = Date.parse(s.end_time || s.last_seen || s.start_time);
    const meta = h("dl", { class: "meta", "data-testid": "session-meta" },
      metaItem("state", stateBadge(s.state)),
      metaItem("identity", h("span", { "data-testid": "session-identity" }, identityBadges(s))),
      s.verified ? metaItem("claimed user", h("a", { href: link("/sessions", { user: s.user_name }) }, s.user_name)) : null,
      metaItem("vouching host", s.auth_host),
      metaItem("host", h("a", { href: link("/sessions", { host: s.host_name }) }, s.host_name)),
      metaItem("shell", s.shell_type),
      metaItem("component", s.component_name ? `${s.component_name} ${s.component_version || ""}`.trim() : ""),
      metaItem("started", `${localTime(s.start_time)} (${s.start_time})`),
      metaItem(s.end_time ? "ended" : "last seen", localTime(s.end_time || s.last_seen)),
      metaItem("duration", fmtDuration(s.duration_s)),
      metaItem("commands", `${s.command_count} (${s.failed_count} failed)`),
      metaItem("exit", s.exit_reason ? `${s.exit_reason}${s.exit_code !== null ? `, code ${s.exit_code}` : ""}` : ""),
      metaItem("pid", s.pid), metaItem("tty", s.tty), metaItem("client address", s.client_address),
      metaItem("start directory", attrs["shell.cwd"]), metaItem("service", s.service_name),
      metaItem("started from", d.parent ? h("span", {}, h("a", { class: "mono", href: link(`/sessions/${d.parent.session_id}`), "data-testid": "parent-link" }, d.parent.session_id.slice(0, 12)),
        d.parent.command ? [" by command ", d.parent.command_seq !== null ? `#${d.parent.command_seq} ` : "", h("code", {}, d.parent.command)] : "") : null),
      metaItem("nested sessions", (d.children || []).length ? h("span", { "data-testid": "children" }, d.children.map((c, i) => [i ? ", " : "",
        h("a", { class: "mono", href: link(`/sessions/${c.session_id}`), "data-testid": "child-link" }, c.session_id.slice(0, 12)),
        c.command_seq !== null && c.command_seq !== undefined ? ` (command #${c.command_seq})` : ""])) : null),
    );
    const foreign = (d.foreign_commands || []).map((c) => h("tr", { "data-testid": "foreign-row" },
      h("td", { class: "num" }, String(c.seq)), h("td", {}, c.verified ? c.enduser_id : "unverified"),
      h("td", { class: "mono cmd" }, c.command)));
    const rows = d.commands.map((c) => h("tr", { class: "clickable", "data-testid": "command-row", "data-seq": c.seq,
      onclick: (ev) => { if (!ev.target.closest("button, a")) recording.seek(c.seq); } },
      h("td", { class: "num" }, String(c.seq)),
      h("td", { class: "num", title: c.start_time }, `+${fmtDuration((Date.parse(c.start_time) - startMs) / 1000)}`),
      h("td", { class: "num" }, fmtDuration(c.duration_ms / 1000)),
      h("td", {}, exitBadge(c.exit_code)),
      h("td", { class: "mono" }, c.cwd || ""),
      h("td", { class: "mono cmd", "data-testid": "command-text" }, c.command, c.redacted ? h("span", { class: "badge", title: "a secret was replaced on the shell host" }, " redacted") : ""),
      h("td", {}, h("button", { type: "button", class: "link", "data-testid": "screen-button", title: "the terminal when this command ended",
        onclick: () => recording.showScreen(c.seq) }, "screen")),
    ));
    const attrRows = Object.keys(attrs).sort().map((k) => h("tr", {}, h("td", { class: "mono" }, k), h("td", { class: "mono" }, attrs[k])));
    return [
      h("p", {}, h("a", { href: link("/sessions") }, "« sessions")),
      h("h1", {}, `Session `, h("span", { class: "mono", "data-testid": "session-id" }, s.session_id), " ", stateBadge(s.state)),
      h("div", { class: "card" }, meta),
      snapshotsCard(d.snapshots),
      annotationsCard(ui, d),
      recording.card,
      recording.screenCard,
      h("div", { class: "card" }, h("h2", {}, "Command timeline"),
        h("p", { class: "muted" }, "Each bar starts when the command started and is as long as it ran; green exited 0, red failed, grey unknown. Dashed lines mark a change of working directory."),
        h("div", { class: "chart", onclick: (ev) => {
          const bar = ev.target.closest("[data-testid=waterfall-row]");
          if (bar && !ev.target.closest("a")) recording.seek(Number(bar.dataset.seq));
        } }, waterfall(d.commands, startMs, endMs))),
      h("div", { class: "card" }, h("h2", {}, `Commands (${d.commands.length})`),
        h("table", { "data-testid": "commands-table" },
          h("thead", {}, h("tr", {}, ["#", "at", "took", "exit", "cwd", "command", ""].map((c, i) => h("th", { class: i < 3 ? "num" : "" }, c)))),
          h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 7, class: "empty" }, "no commands recorded"))))),
      foreign.length ? h("div", { class: "card", "data-testid": "foreign-commands" }, h("h2", {}, `Sent by another identity (${foreign.length})`),
        h("p", { class: "muted" }, "These spans carry this session's id but not its owner's identity; they reached the store without the sink's owner check and are not part of this session."),
        h("table", {}, h("thead", {}, h("tr", {}, ["#", "sent by", "command"].map((c) => h("th", {}, c)))), h("tbody", {}, foreign))) : null,
      h("div", { class: "card" }, h("details", {}, h("summary", {}, `All attributes (${attrRows.length})`), h("table", {}, h("tbody", {}, attrRows)))),
    ];
  };
  if (!mount(gen, ...render(data))) return;
  if (focusCommand(id, params.get("seq"), data.commands)) recording.startAt(Number(params.get("seq")));
  if (data.session.state !== "ended") {
    // Follow the session: each command as it is stored, its state, its end.
    const seen = new Set(data.commands.map((c) => c.span_id));
    setLive("● live");
    follow(`/api/sessions/${encodeURIComponent(id)}/events`, {}, {
      isCurrent: () => gen === generation,
      onStatus: (status) => { if (status === "reconnecting") setLive("● live · reconnecting…"); },
      onEvent: (ev) => {
        if (ev.kind === "command") {
          if (seen.has(ev.data.span_id)) return;
          seen.add(ev.data.span_id);
          data.commands.push(ev.data);
          data.commands.sort((a, b) => a.seq - b.seq || a.start_time.localeCompare(b.start_time));
          data.session.command_count = data.commands.length;
          data.session.failed_count = data.commands.filter((c) => c.status === "Error").length;
        } else {
          data.session = { ...data.session, ...ev.data, attributes: ev.data.attributes || data.session.attributes };
        }
        mount(gen, ...render(data));
        focusCommand(id, params.get("seq"), data.commands, { first: false });
        setLive(data.session.state === "ended" ? "" : `● live · updated ${new Date().toLocaleTimeString()}`);
      },
    });
  }
}

// ---- analytics ----------------------------------------------------------------------------

function card(heading, testid, ...body) {
  return h("div", { class: "card", "data-testid": testid }, h("h2", {}, heading), ...body);
}

function failureBars(rows, dimension, testid) {
  const sorted = rows.filter((r) => r.commands > 0).sort((a, b) => b.failure_rate - a.failure_rate || b.commands - a.commands);
  return hbars(sorted, {
    testid, ariaLabel: `failure rate by ${dimension}`, max: Math.max(...sorted.map((r) => r.failure_rate), 0.0001),
    label: (r) => r.key, value: (r) => r.failure_rate, barClass: () => "fail",
    text: (r) => `${fmtPercent(r.failure_rate)} · ${fmtCount(r.failed_commands)} of ${fmtCount(r.commands)}`,
    href: (r) => (r.key && dimension !== "component" ? link("/sessions", { [dimension]: r.key }) : r.key ? link("/sessions", { component: r.key }) : null),
  });
}

function hostsNowCard(hosts) {
  const hostRows = hosts.hosts.map((r) => h("tr", { "data-testid": "host-now", "data-host": r.host_name },
    h("td", {}, h("a", { href: link("/sessions", { host: r.host_name, state: "active" }) }, r.host_name || "(unknown)")),
    h("td", { class: "num" }, String(r.sessions)),
    h("td", {}, r.users.flatMap((u, i) => [i ? ", " : "", h("a", { href: link("/sessions", { user: u, state: "active" }) }, u)])),
    h("td", {}, r.shell_types.join(", ")),
    h("td", {}, localTime(r.oldest_start))));
  return card("Who is on which host now", "hosts-now",
    hostRows.length
      ? h("table", { class: "hostlist" }, h("thead", {}, h("tr", {}, h("th", {}, "host"), h("th", { class: "num" }, "active sessions"),
        h("th", {}, "users"), h("th", {}, "shells"), h("th", {}, "oldest started"))), h("tbody", {}, hostRows))
      : h("p", { class: "empty" }, "Nobody has an active session."));
}

async function analyticsView(params, gen) {
  const filters = {};
  for (const k of FILTERS) if (k !== "state" && params.get(k)) filters[k] = params.get(k);
  const [stats, durations, hosts] = await Promise.all([
    api("/api/stats", { ...filters, top: 10 }),
    api("/api/durations", filters),
    api("/api/hosts-now", { ...filters, limit: 50 }),
  ]);
  if (gen !== generation) return;
  const t = stats.totals;
  const tile = (k, v, testid) => h("div", { class: "tile", "data-testid": testid }, h("div", { class: "v" }, v), h("div", { class: "k" }, k));
  const tiles = h("div", { class: "tiles" },
    tile("sessions", fmtCount(t.sessions), "total-sessions"), tile("active now", fmtCount(t.active), "total-active"),
    tile("ended", fmtCount(t.ended)), tile("abandoned", fmtCount(t.abandoned)),
    tile("commands", fmtCount(t.commands), "total-commands"),
    tile("failed commands", `${fmtCount(t.failed_commands)} (${t.commands ? fmtPercent(t.failed_commands / t.commands) : "0%"})`),
    tile("median session", fmtDuration(t.duration_p50_s)), tile("90th percentile", fmtDuration(t.duration_p90_s)));

  const hostsCard = hostsNowCard(hosts);
  const histo = histogram(durations.buckets.map((b) => ({ label: b.label, value: b.sessions })), {
    testid: "duration-histogram", ariaLabel: "session duration distribution",
    caption: `sessions per duration range · median ${fmtDuration(t.duration_p50_s)}, p90 ${fmtDuration(t.duration_p90_s)}, p99 ${fmtDuration(t.duration_p99_s)}`,
  });
  const top = hbars(stats.top_commands, {
    testid: "top-commands", ariaLabel: "top commands", mono: true,
    label: (r) => r.command_name, value: (r) => r.runs, part: (r) => r.failures,
    text: (r) => `${fmtCount(r.runs)} run${r.runs === 1 ? "" : "s"} · ${fmtPercent(r.failure_rate)} failed`,
  });
  const hint = (str) => h("p", { class: "muted" }, str);
  const content = [
    h("h1", {}, "Analytics"),
    filterForm(params, ["user", "host", "component", "shell_type"], "/analytics"),
    tiles,
    hostsCard,
    h("div", { class: "grid2" },
      card("Sessions by hour of week (UTC)", "heatmap-card", hint("Darker cells had more sessions start; the number in a cell is the count."),
        h("div", { class: "chart" }, heatmap(stats.busiest_hours, { testid: "heatmap" }))),
      card("Session durations", "durations-card", h("div", { class: "chart" }, histo)),
      card("Top commands", "top-commands-card", hint("Bar length: runs; the red part: runs that failed."), h("div", { class: "chart" }, top)),
      card("Failure rate by user", "fail-user-card", hint("Share of commands that exited non-zero."), h("div", { class: "chart" }, failureBars(stats.by_user, "user", "fail-by-user"))),
      card("Failure rate by host", "fail-host-card", h("div", { class: "chart" }, failureBars(stats.by_host, "host", "fail-by-host"))),
      card("Failure rate by component", "fail-component-card", hint("Custom admin shells; sessions without a component are grouped as (none)."),
        h("div", { class: "chart" }, failureBars(stats.by_component, "component", "fail-by-component"))),
    ),
  ];
  if (!mount(gen, ...content)) return;
  setLive(`● live · refreshed ${new Date().toLocaleTimeString()}`);
  let current = hostsCard;
  schedule(async () => {
    const fresh = await api("/api/hosts-now", { ...filters, limit: 50 });
    if (gen !== generation || !fresh) return;
    const next = hostsNowCard(fresh);
    current.replaceWith(next);
    current = next;
    setLive(`● live · refreshed ${new Date().toLocaleTimeString()}`);
  });
}

// ---- start --------------------------------------------------------------------------------

setupToken();
setupSearchBox(link);
window.addEventListener("hashchange", route);
route();
