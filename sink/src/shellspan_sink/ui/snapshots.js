// Shell-state snapshots of a session (the `snapshots` of GET /api/sessions/{id}), shown as the
// difference between two of them: by default the first (the session's start) and the last.
// Each snapshot's environment is its changes since the session started, so a variable's value
// in a snapshot is its changed value, "(unset)" when it was removed, or as it was at start.

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined && c !== false) node.append(typeof c === "object" ? c : String(c));
  }
  return node;
}

const AT_START = "(as at start)";

function envValue(snap, name) {
  if (snap.env_changed === null || snap.env_changed === undefined) return "(not seen)";
  if (Object.prototype.hasOwnProperty.call(snap.env_changed, name)) return snap.env_changed[name];
  if ((snap.env_removed || []).includes(name)) return "(unset)";
  return AT_START;
}

function fmt(value, unit = "") {
  if (value === null || value === undefined || value === "") return "—";
  if (value === true) return "yes";
  if (value === false) return "no";
  return `${value}${unit}`;
}

// [label, key, value of a snapshot] for every fact a snapshot has, in display order.
export function facts(a, b) {
  const rows = [
    ["directory", "cwd", (s) => fmt(s.cwd)],
    ["virtualenv", "venv", (s) => fmt(s.venv)],
    ["conda environment", "conda_env", (s) => fmt(s.conda_env)],
    ["git branch", "git_branch", (s) => fmt(s.git_branch)],
    ["git: uncommitted changes", "git_dirty", (s) => fmt(s.git_dirty)],
    ["background jobs", "jobs", (s) => (s.jobs && s.jobs.length ? s.jobs.join("\n") : "none")],
    ["CPU user / system (s)", "cpu", (s) => `${fmt(s.cpu_user_s)} / ${fmt(s.cpu_system_s)}`],
    ["peak memory", "max_rss_kb", (s) => fmt(s.max_rss_kb, " kB")],
  ];
  const names = new Set();
  for (const s of [a, b]) {
    Object.keys(s.env_changed || {}).forEach((n) => names.add(n));
    (s.env_removed || []).forEach((n) => names.add(n));
  }
  for (const name of [...names].sort()) rows.push([`$${name}`, `env:${name}`, (s) => envValue(s, name)]);
  return rows;
}

function label(snap, i) {
  const when = new Date(snap.time).toLocaleTimeString();
  return `#${i + 1} ${snap.kind || "snapshot"} at ${when}`;
}

function diffTable(a, b, showAll) {
  const body = [];
  for (const [name, key, value] of facts(a, b)) {
    const before = value(a), after = value(b);
    const changed = before !== after;
    if (!changed && !showAll) continue;
    body.push(el("tr", { class: changed ? "changed" : "", "data-testid": "snapshot-row", "data-key": key },
      el("td", {}, name), el("td", { class: "mono pre" }, before), el("td", { class: "mono pre" }, after)));
  }
  if (!body.length) body.push(el("tr", {}, el("td", { colspan: 3, class: "empty" }, "nothing changed between these snapshots")));
  return el("table", { "data-testid": "snapshot-diff" },
    el("thead", {}, el("tr", {}, el("th", {}, ""), el("th", {}, "from"), el("th", {}, "to"))),
    el("tbody", {}, body));
}

// The card of the session page; null when the session has no snapshots.
export function snapshotsCard(snapshots) {
  if (!snapshots || !snapshots.length) return null;
  const state = { from: 0, to: snapshots.length - 1, all: snapshots.length === 1 };
  const holder = el("div", {});
  const pick = (which) => el("select", { "data-testid": `snapshot-${which}`, onchange: (ev) => { state[which] = Number(ev.target.value); draw(); } },
    snapshots.map((s, i) => {
      const opt = el("option", { value: i }, label(s, i));
      if (i === state[which]) opt.selected = true;
      return opt;
    }));
  const all = el("input", { type: "checkbox", "data-testid": "snapshot-all", onchange: (ev) => { state.all = ev.target.checked; draw(); } });
  all.checked = state.all;
  function draw() {
    const a = snapshots[state.from], b = snapshots[state.to];
    const source = (s) => s.env_source ? ` (environment from ${s.env_source})` : "";
    holder.replaceChildren(diffTable(a, b, state.all),
      el("p", { class: "muted" }, `from: ${a.time}${source(a)} · to: ${b.time}${source(b)}`));
  }
  draw();
  return el("div", { class: "card", "data-testid": "snapshots-card" },
    el("h2", {}, `Shell state (${snapshots.length} snapshot${snapshots.length === 1 ? "" : "s"})`),
    el("p", { class: "muted" }, "What changed in the shell between two snapshots: taken at start, while commands ran and at the end. Secret-looking values read [REDACTED]."),
    el("p", {}, "from ", pick("from"), " to ", pick("to"), " ", el("label", {}, all, " show unchanged")),
    holder);
}
