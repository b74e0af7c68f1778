// Command search across sessions, and what a session page shows of it.
//   #/commands?q=&regex=1&user=&host=&shell_type=&cwd=&exit=&since=&until=&session=&tag=&cursor=
// Each hit links to #/sessions/<id>?seq=<n>: the session page scrolls to that command and
// highlights it (focusCommand). app.js passes in the helpers it owns (`ui`).

export const SEARCH_FILTERS = ["q", "regex", "user", "host", "shell_type", "cwd", "exit", "since", "until", "session", "tag"];

// The session page was opened at a command (#/sessions/<id>?seq=<n>): mark its row, and on first
// display scroll to it and tell whoever listens to seek to that command's moment, e.g. a
// terminal-recording player, once there is one:
//   document.addEventListener("shellspan:focus-command", (ev) => player.seek(ev.detail.startTime))
export function focusCommand(sessionId, seq, commands, { first = true } = {}) {
  if (seq === null || seq === undefined || seq === "") return null;
  const row = document.querySelector(`[data-testid=command-row][data-seq="${CSS.escape(String(seq))}"]`);
  if (!row) return null;
  row.classList.add("focus");
  if (!first) return row;
  row.scrollIntoView({ block: "center" });
  const command = commands.find((c) => String(c.seq) === String(seq));
  document.dispatchEvent(new CustomEvent("shellspan:focus-command", {
    detail: { sessionId, seq: Number(seq), startTime: command ? command.start_time : null, spanId: command ? command.span_id : null },
  }));
  return row;
}

// The search box in the page header: Enter opens the command search for its text.
export function setupSearchBox(link) {
  const form = document.getElementById("command-search");
  if (!form) return;
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = document.getElementById("command-search-input");
    location.hash = link("/commands", { q: input.value.trim() });
  });
}

// The text of a command with the parts matching a substring query wrapped in <mark> (text nodes
// only: command text is never markup).
function highlighted(ui, text, q, regex) {
  if (!q || regex) return [text];
  const parts = [];
  const lower = text.toLowerCase();
  const needle = q.toLowerCase();
  let at = 0;
  for (let i = lower.indexOf(needle); i >= 0 && needle; i = lower.indexOf(needle, at)) {
    if (i > at) parts.push(text.slice(at, i));
    parts.push(ui.h("mark", {}, text.slice(i, i + needle.length)));
    at = i + needle.length;
  }
  parts.push(text.slice(at));
  return parts;
}

function hitCard(ui, hit, q, regex) {
  const href = ui.link(`/sessions/${hit.session_id}`, { seq: hit.seq });
  const line = (cls, seq, text, testid) => ui.h("div", { class: `line ${cls}`, "data-testid": testid },
    ui.h("span", { class: "seq" }, String(seq)), ui.h("span", { class: "mono cmd" }, text));
  return ui.h("div", { class: "hit", "data-testid": "hit", "data-session-id": hit.session_id, "data-seq": hit.seq },
    ui.h("div", { class: "hit-head" },
      ui.h("a", { href, "data-testid": "hit-link" }, ui.localTime(hit.start_time)),
      ui.h("span", { title: hit.verified ? "verified identity" : "the user name the session claims" },
        hit.user || "–", hit.verified ? " ✓" : ""),
      ui.h("span", {}, hit.host_name ? `@ ${hit.host_name}` : ""),
      ui.h("span", { class: "muted" }, hit.shell_type || ""),
      ui.exitBadge(hit.exit_code),
      ui.h("span", { class: "muted mono" }, hit.cwd || ""),
      ui.h("a", { class: "muted mono", href }, `session ${hit.session_id.slice(0, 12)} #${hit.seq}`)),
    ui.h("div", { class: "hit-lines" },
      hit.before ? line("context", hit.before.seq, hit.before.command, "hit-before") : "",
      line("match", hit.seq, highlighted(ui, hit.command, q, regex), "hit-command"),
      hit.after ? line("context", hit.after.seq, hit.after.command, "hit-after") : ""));
}

function searchForm(ui, params) {
  const inputs = {};
  const field = (name, label, placeholder, size) => {
    inputs[name] = ui.h("input", { name, value: params.get(name) || "", placeholder, size, "data-testid": `search-${name}` });
    return ui.h("label", {}, label, inputs[name]);
  };
  inputs.regex = ui.h("input", { type: "checkbox", name: "regex", checked: params.get("regex") === "1", "data-testid": "search-regex" });
  const form = ui.h("form", { class: "filters", "data-testid": "search-form" },
    field("q", "command contains", "kubectl delete, rm -rf, DROP TABLE…", 40),
    ui.h("label", { class: "check" }, ui.h("span", {}, "regular expression"), inputs.regex),
    field("user", "user", "any"), field("host", "host", "any"), field("shell_type", "shell", "any"),
    field("cwd", "directory", "/srv (and below)"), field("exit", "exit", "code or failed"),
    field("since", "since", "24h, 7d"), field("until", "until", ""), field("tag", "tag", "any"),
    field("session", "session", "id"),
    ui.h("button", { type: "submit" }, "Search"),
    ui.h("a", { href: ui.link("/commands") }, "clear"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const next = {};
    for (const [k, input] of Object.entries(inputs)) next[k] = k === "regex" ? (input.checked ? "1" : "") : input.value.trim();
    location.hash = ui.link("/commands", next);
  });
  return form;
}

export async function commandsView(ui, params, gen) {
  const filters = {};
  for (const k of SEARCH_FILTERS) if (params.get(k)) filters[k] = params.get(k);
  const cursor = params.get("cursor") || "";
  const data = await ui.api("/api/commands", { ...filters, limit: 50, cursor });
  if (!ui.isCurrent(gen)) return;
  const q = filters.q || "";
  const regex = filters.regex === "1";
  const box = document.getElementById("command-search-input");
  if (box && document.activeElement !== box) box.value = q;
  const hits = data.commands.map((hit) => hitCard(ui, hit, q, regex));
  const pager = ui.h("div", { class: "pager" },
    cursor ? ui.h("a", { href: ui.link("/commands", filters), "data-testid": "newest" }, "« newest") : "",
    data.next_cursor
      ? ui.h("a", { href: ui.link("/commands", { ...filters, cursor: data.next_cursor }), "data-testid": "older" }, "older »")
      : ui.h("span", { class: "muted" }, "end of results"));
  ui.mount(gen,
    ui.h("h1", {}, "Commands"),
    searchForm(ui, params),
    ui.h("div", { class: "card", "data-testid": "hits" },
      ui.h("p", { class: "muted" }, q
        ? `Commands ${regex ? "matching the regular expression" : "containing"} “${q}”, newest first, with the command before and after each.`
        : "Every command, newest first. Type a text above to search."),
      hits.length ? hits : ui.h("p", { class: "empty", "data-testid": "no-hits" }, "No command matches."),
      pager));
}

// A session's tags and its annotation history (oldest first; superseded ones are marked).
export function annotationsCard(ui, data) {
  const notes = data.annotations || [];
  const tags = (data.session.tags || []).map((t) => ui.h("a", { class: "badge tag", href: ui.link("/sessions", { tag: t }), "data-testid": "tag" }, t));
  const rows = notes.map((a) => ui.h("li", { "data-testid": "annotation", class: a.superseded_by ? "superseded" : "" },
    ui.h("div", {}, ui.h("strong", {}, a.author), a.author_verified ? " ✓" : " (unverified)", " · ",
      ui.h("span", { title: a.created_at }, ui.localTime(a.created_at)),
      a.superseded_by ? ui.h("span", { class: "muted" }, " · superseded") : "",
      a.supersedes ? ui.h("span", { class: "muted" }, ` · supersedes ${a.supersedes.slice(0, 8)}`) : ""),
    a.tags.length ? ui.h("div", {}, a.tags.map((t) => ui.h("span", { class: "badge tag" }, t))) : "",
    ["ticket", "reason", "reviewer"].filter((k) => a[k]).map((k) => ui.h("div", {}, ui.h("span", { class: "muted" }, `${k}: `), a[k])),
    a.note ? ui.h("div", { class: "note" }, a.note) : ""));
  return ui.h("div", { class: "card", "data-testid": "annotations" },
    ui.h("h2", {}, "Tags and annotations"),
    tags.length ? ui.h("p", { "data-testid": "tags" }, tags) : ui.h("p", { class: "muted" }, "No tags."),
    rows.length ? ui.h("ol", { class: "annotations" }, rows)
      : ui.h("p", { class: "muted" }, "No annotations. Add one with shellspan-sink sessions annotate ID --tag T --note TEXT."));
}
