// Hand-written SVG charts with direct labels: horizontal bars, hour-of-week heatmap, histogram
// and the command waterfall. Every text node is set with textContent (never parsed as markup).

const NS = "http://www.w3.org/2000/svg";

export function s(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
  return node;
}

function text(x, y, value, attrs = {}) {
  return s("text", { x, y, ...attrs }, String(value));
}

function title(value) {
  return s("title", {}, String(value));
}

function root(width, height, label, testid) {
  return s("svg", {
    viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": label,
    "data-testid": testid, class: "chart-svg", preserveAspectRatio: "xMinYMin meet",
  });
}

export function truncate(value, max) {
  const str = String(value ?? "");
  return str.length > max ? str.slice(0, max - 1) + "…" : str;
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "–";
  const sec = Math.max(0, seconds);
  if (sec < 0.001) return sec === 0 ? "0 ms" : `${(sec * 1000).toFixed(2)} ms`;
  if (sec < 0.01) return `${(sec * 1000).toFixed(1)} ms`;
  if (sec < 1) return `${Math.round(sec * 1000)} ms`;
  if (sec < 60) return `${sec < 10 ? sec.toFixed(2) : sec.toFixed(1)} s`;
  if (sec < 3600) return `${Math.floor(sec / 60)}m ${String(Math.floor(sec % 60)).padStart(2, "0")}s`;
  if (sec < 86400) return `${Math.floor(sec / 3600)}h ${String(Math.floor((sec % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(sec / 86400)}d ${Math.floor((sec % 86400) / 3600)}h`;
}

export function fmtPercent(rate) {
  const p = rate * 100;
  return `${p === 0 || p >= 10 ? p.toFixed(0) : p.toFixed(1)}%`;
}

export function fmtCount(n) {
  return Number(n).toLocaleString("en-US");
}

/**
 * Horizontal bars, one row per item, the value written at the end of each bar.
 * opts: label(r), value(r), text(r), part(r) (a red share drawn over the bar), href(r), max.
 */
export function hbars(rows, opts) {
  const width = opts.width ?? 560;
  const rowH = 24;
  const labelW = opts.labelWidth ?? 170;
  const valueW = opts.valueWidth ?? 150;
  const barW = width - labelW - valueW - 10;
  const height = Math.max(rows.length, 1) * rowH + 6;
  const svg = root(width, height, opts.ariaLabel ?? "bar chart", opts.testid);
  const max = opts.max ?? Math.max(...rows.map(opts.value), 0);
  rows.forEach((r, i) => {
    const y = i * rowH + 3;
    const v = opts.value(r);
    const w = max > 0 ? Math.max(v > 0 ? 2 : 0, (v / max) * barW) : 0;
    const labelStr = opts.label(r) || "(none)";
    const label = s("g", {}, title(labelStr),
      text(labelW - 8, y + 15, truncate(labelStr, 24), { "text-anchor": "end", class: opts.mono ? "mono label" : "label" }));
    const href = opts.href ? opts.href(r) : null;
    const g = s("g", { class: "row", "data-key": labelStr });
    g.append(s("rect", { class: "bg", x: 0, y, width, height: rowH - 2 }));
    g.append(href ? s("a", { href }, label) : label);
    g.append(s("rect", { class: opts.barClass ? opts.barClass(r) : "bar", x: labelW, y: y + 3, width: w, height: rowH - 8, rx: 2 },
      title(`${labelStr}: ${opts.text(r)}`)));
    if (opts.part) {
      const p = opts.part(r);
      const pw = max > 0 && p > 0 ? Math.max(2, (p / max) * barW) : 0;
      if (pw) g.append(s("rect", { class: "fail", x: labelW, y: y + 3, width: pw, height: rowH - 8, rx: 2 }));
    }
    g.append(text(labelW + w + 6, y + 15, opts.text(r), { class: "value" }));
    svg.append(g);
  });
  if (!rows.length) svg.append(text(8, 18, "no data", { class: "muted" }));
  return svg;
}

const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

function blend(t) {
  // light blue (low) to dark blue (high)
  const lo = [238, 243, 251], hi = [31, 79, 168];
  const c = lo.map((l, i) => Math.round(l + (hi[i] - l) * t));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

/** Sessions by hour of week: 7 rows (Monday first) by 24 hours, each cell labelled with its count. */
export function heatmap(cells, opts = {}) {
  const cw = 30, ch = 24, left = 44, top = 22;
  const width = left + 24 * cw + 4, height = top + 7 * ch + 24;
  const svg = root(width, height, "sessions by hour of week", opts.testid ?? "heatmap");
  const counts = new Map(cells.map((c) => [`${c.weekday}-${c.hour}`, c.sessions]));
  const max = Math.max(0, ...cells.map((c) => c.sessions));
  for (let h = 0; h < 24; h += 1) {
    svg.append(text(left + h * cw + cw / 2, top - 7, String(h).padStart(2, "0"), { "text-anchor": "middle", class: "muted" }));
  }
  for (let d = 1; d <= 7; d += 1) {
    const y = top + (d - 1) * ch;
    svg.append(text(left - 8, y + ch / 2 + 4, WEEKDAYS[d - 1], { "text-anchor": "end" }));
    for (let h = 0; h < 24; h += 1) {
      const n = counts.get(`${d}-${h}`) ?? 0;
      const t = max > 0 ? n / max : 0;
      const cell = s("rect", {
        x: left + h * cw + 1, y: y + 1, width: cw - 2, height: ch - 2, rx: 2,
        fill: n ? blend(0.15 + 0.85 * t) : "#f4f5f7", "data-weekday": d, "data-hour": h, "data-sessions": n,
      }, title(`${WEEKDAYS[d - 1]} ${String(h).padStart(2, "0")}:00–${String(h).padStart(2, "0")}:59 ${opts.zone ?? "UTC"}: ${n} session${n === 1 ? "" : "s"}`));
      svg.append(cell);
      if (n) {
        svg.append(text(left + h * cw + cw / 2, y + ch / 2 + 4, n >= 1000 ? `${Math.round(n / 100) / 10}k` : n,
          { "text-anchor": "middle", class: t > 0.45 ? "in-bar" : "", "font-size": 11 }));
      }
    }
  }
  svg.append(text(left, height - 6, `hour of day (${opts.zone ?? "UTC"}); each cell shows the number of sessions started`, { class: "muted" }));
  return svg;
}

/** Vertical histogram; each bar labelled with its count above and its bucket below. */
export function histogram(buckets, opts = {}) {
  const width = opts.width ?? 680, height = 230, left = 10, bottom = 40, top = 22;
  const svg = root(width, height, opts.ariaLabel ?? "histogram", opts.testid ?? "histogram");
  const n = Math.max(buckets.length, 1);
  const slot = (width - left * 2) / n;
  const plotH = height - top - bottom;
  const max = Math.max(0, ...buckets.map((b) => b.value));
  svg.append(s("line", { class: "axis", x1: left, x2: width - left, y1: top + plotH + 0.5, y2: top + plotH + 0.5 }));
  buckets.forEach((b, i) => {
    const h = max > 0 ? (b.value / max) * plotH : 0;
    const x = left + i * slot;
    const bar = s("rect", { class: "bar", x: x + 3, y: top + plotH - h, width: slot - 6, height: h, rx: 2, "data-label": b.label, "data-value": b.value },
      title(`${b.label}: ${b.value}`));
    svg.append(bar);
    if (b.value) svg.append(text(x + slot / 2, top + plotH - h - 5, fmtCount(b.value), { "text-anchor": "middle" }));
    svg.append(text(x + slot / 2, top + plotH + 16, b.label, { "text-anchor": "middle", class: "muted", "font-size": 11 }));
  });
  if (opts.caption) svg.append(text(left, height - 4, opts.caption, { class: "muted" }));
  return svg;
}

function niceStep(total) {
  const steps = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600,
    900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  return steps.find((st) => total / st <= 8) ?? 86400 * Math.ceil(total / 86400 / 8);
}

function fmtOffset(sec) {
  if (sec === 0) return "0";
  if (sec < 1) return `+${Math.round(sec * 1000)}ms`;
  if (sec < 60) return `+${+sec.toFixed(2)}s`;
  if (sec < 3600) return `+${+(sec / 60).toFixed(1)}m`;
  return `+${+(sec / 3600).toFixed(1)}h`;
}

/**
 * The command timeline: one row per command, its bar placed at the command's start and as long
 * as it ran (green exit 0, red non-zero, grey unknown), exit code and duration written at the
 * end; a dashed marker and a "cwd →" label where the working directory changed.
 */
export function waterfall(commands, startMs, endMs, opts = {}) {
  const width = opts.width ?? 1100, labelW = 330, valueW = 150, rowH = 22, cwdH = 16, top = 26;
  const barW = width - labelW - valueW;
  let lastEnd = endMs;
  for (const c of commands) lastEnd = Math.max(lastEnd, Date.parse(c.start_time) + c.duration_ms);
  const total = Math.max((lastEnd - startMs) / 1000, 0.001);
  const xOf = (ms) => labelW + Math.min(Math.max((ms - startMs) / 1000 / total, 0), 1) * barW;

  let prevCwd = null;
  const rows = [];
  let y = top;
  for (const c of commands) {
    const changed = c.cwd && c.cwd !== prevCwd;
    if (changed) { rows.push({ kind: "cwd", y, c, first: prevCwd === null }); y += cwdH; }
    if (c.cwd) prevCwd = c.cwd;
    rows.push({ kind: "cmd", y, c });
    y += rowH;
  }
  const height = y + 8;
  const svg = root(width, height, "command timeline", opts.testid ?? "waterfall");

  const step = niceStep(total);
  for (let t = 0; t <= total + 1e-9; t += step) {
    const x = labelW + (t / total) * barW;
    svg.append(s("line", { class: "grid", x1: x, x2: x, y1: top - 6, y2: height - 4 }));
    svg.append(text(x, top - 10, fmtOffset(t), { "text-anchor": "middle", class: "muted", "font-size": 11 }));
  }
  svg.append(text(4, top - 10, "command (in order)", { class: "muted", "font-size": 11 }));
  svg.append(text(width - valueW + 8, top - 10, "exit · duration", { class: "muted", "font-size": 11 }));

  for (const r of rows) {
    const c = r.c;
    const cStart = Date.parse(c.start_time);
    if (r.kind === "cwd") {
      const x = xOf(cStart);
      svg.append(s("line", { class: "cwd-mark", x1: x, x2: x, y1: r.y + 2, y2: r.y + cwdH + rowH - 2 }));
      svg.append(s("g", {}, title(c.cwd),
        text(14, r.y + 12, `${r.first ? "cwd" : "cd →"} ${truncate(c.cwd, 44)}`, { class: "cwd mono", "font-size": 11, "data-testid": "cwd-change" })));
      continue;
    }
    const code = c.exit_code;
    const cls = code === null || code === undefined ? "unknown" : code === 0 ? "ok" : "fail";
    const x = xOf(cStart);
    const w = Math.max(2, xOf(cStart + c.duration_ms) - x);
    const g = s("g", { class: "row", "data-testid": "waterfall-row", "data-seq": c.seq, "data-exit": code ?? "" });
    g.append(s("rect", { class: "bg", x: 0, y: r.y, width, height: rowH }));
    g.append(s("g", {}, title(c.command),
      text(4, r.y + 15, `${String(c.seq).padStart(3, " ")}  ${truncate(c.command || c.command_name, 42)}`, { class: "mono", "xml:space": "preserve" })));
    g.append(s("rect", { class: cls, x, y: r.y + 4, width: w, height: rowH - 8, rx: 2 },
      title(`${c.command}\nstarted ${c.start_time}\nran ${fmtDuration(c.duration_ms / 1000)}\nexit ${code ?? "unknown"}\ncwd ${c.cwd || "?"}`)));
    const exitStr = code === null || code === undefined ? "exit ?" : `exit ${code}`;
    g.append(text(width - valueW + 8, r.y + 15, `${exitStr} · ${fmtDuration(c.duration_ms / 1000)}`, { class: cls === "fail" ? "fail-text" : "" }));
    svg.append(g);
  }
  if (!commands.length) svg.append(text(4, top + 14, "no commands recorded", { class: "muted" }));
  return svg;
}
