// The terminal player of the session page: the session's asciicast stream
// (GET /api/sessions/<id>/recording) played in xterm.js, a real terminal emulator.
//
// The stream is read as it arrives, so a long recording starts playing after its first lines;
// later events keep arriving while it plays. Every command starts with an "m" marker
// ("#SEQ command"); seeking to a command replays everything before it at once (so the screen is
// what it was then) and plays on from its marker. xterm.js is installed by `make setup` (npm ci)
// under ui/vendor/ and loaded only here, so the rest of the UI works without it.

const VENDOR = "/ui/vendor/node_modules/@xterm";
const SPEEDS = [0.5, 1, 2, 4, 8, 16];
const IDLE_LIMIT_S = 2; // longer pauses are shortened to this

let xtermModules = null;

function loadXterm() {
  if (!xtermModules) {
    if (!document.querySelector("link[data-xterm-css]")) {
      const css = document.createElement("link");
      css.rel = "stylesheet";
      css.href = `${VENDOR}/xterm/css/xterm.css`;
      css.dataset.xtermCss = "1";
      document.head.append(css);
    }
    xtermModules = Promise.all([import(`${VENDOR}/xterm/lib/xterm.mjs`), import(`${VENDOR}/addon-fit/lib/addon-fit.mjs`)]);
  }
  return xtermModules;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, String(v));
  }
  node.append(...children);
  return node;
}

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const p = (n) => String(n).padStart(2, "0");
  return s >= 3600 ? `${Math.floor(s / 3600)}:${p(Math.floor(s / 60) % 60)}:${p(s % 60)}` : `${p(Math.floor(s / 60))}:${p(s % 60)}`;
}

function parseSize(text) {
  const m = /^(\d+)x(\d+)$/.exec(text);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

export class Player {
  constructor(root, sessionId, headers) {
    this.root = root;
    this.sessionId = sessionId;
    this.headers = headers;
    this.events = []; // [t, code, data]
    this.markers = []; // {seq, label, index, t}
    this.header = null;
    this.done = false;
    this.index = 0; // the next event to apply
    this.pos = 0; // recording time applied so far (seconds)
    this.playing = false;
    this.speed = 1;
    this.timer = null;
    this.idle = false; // playing, and every event that arrived has been played
    this.waiters = []; // resolved when more events arrive
    this.started = performance.now();
    this.abort = new AbortController();
    this.root.dataset.state = "loading";
  }

  // Fetch the recording and load xterm.js at the same time; play once both are there.
  async start() {
    const modules = loadXterm();
    modules.catch(() => {}); // reported below, once the recording is known to exist
    const resp = await fetch(`/api/sessions/${encodeURIComponent(this.sessionId)}/recording`,
      { headers: this.headers(), cache: "no-store", signal: this.abort.signal });
    if (resp.status === 404) {
      this.root.dataset.state = "none";
      this.root.replaceChildren(el("p", { class: "empty", "data-testid": "no-recording" }, "No terminal recording for this session (sessions started under `shellspan record` have one)."));
      return;
    }
    if (!resp.ok) throw new Error(`recording: ${resp.status} ${resp.statusText}`);
    let loaded;
    try {
      loaded = await modules;
    } catch (err) {
      this.root.dataset.state = "unavailable";
      this.root.replaceChildren(el("p", { class: "empty" }, "The terminal player is not installed on this sink (run `make setup` where Node.js is available). ",
        el("a", { href: `/api/sessions/${this.sessionId}/recording?download=1` }, "Download the recording"), " to play it with asciinema."));
      return;
    }
    await this.read(resp.body.getReader(), loaded);
  }

  // The page moved on: stop playing and reading.
  stop() {
    this.pause();
    this.abort.abort();
  }

  async read(reader, [{ Terminal }, { FitAddon }]) {
    const decoder = new TextDecoder();
    let rest = "";
    for (;;) {
      const { value, done } = await reader.read();
      rest += decoder.decode(value || new Uint8Array(), { stream: !done });
      const lines = rest.split("\n");
      rest = done ? "" : lines.pop();
      for (const line of lines) if (line.trim()) this.take(line, Terminal, FitAddon);
      this.wake();
      if (done) break;
    }
    this.done = true;
    this.wake();
    this.updateMarkers();
    this.showTime();
  }

  take(line, Terminal, FitAddon) {
    const value = JSON.parse(line);
    if (!this.header) {
      this.header = value;
      this.build(Terminal, FitAddon);
      return;
    }
    const index = this.events.push(value) - 1;
    if (value[1] === "m") {
      const m = /^#(\d+) /.exec(value[2]);
      this.markers.push({ seq: m ? Number(m[1]) : null, label: value[2], index, t: value[0] });
      if (this.markerBar) this.updateMarkers();
    }
    if (this.events.length === 1) this.ready();
  }

  build(Terminal, FitAddon) {
    const h = this.header;
    this.term = new Terminal({ cols: h.width, rows: h.height, disableStdin: true, convertEol: false, scrollback: 2000,
      fontSize: 13, fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace', cursorBlink: false });
    this.screen = el("div", { class: "player-screen", "data-testid": "player-screen" });
    this.playButton = el("button", { type: "button", "data-testid": "player-play", onclick: () => (this.playing ? this.pause() : this.play()) }, "Play");
    this.speedSelect = el("select", { "data-testid": "player-speed", "aria-label": "speed", onchange: () => { this.speed = Number(this.speedSelect.value); this.reschedule(); } },
      ...SPEEDS.map((s) => { const o = el("option", { value: s }, `${s}×`); if (s === 1) o.selected = true; return o; }));
    this.time = el("span", { class: "player-time mono", "data-testid": "player-time" }, "00:00");
    this.command = el("span", { class: "player-command mono", "data-testid": "player-command" });
    this.markerBar = el("div", { class: "player-markers", "data-testid": "player-markers" });
    this.root.replaceChildren(
      el("div", { class: "player-controls" }, this.playButton, this.speedSelect, this.time, this.command,
        el("a", { href: `/api/sessions/${this.sessionId}/recording?download=1`, class: "muted" }, "download .cast")),
      this.markerBar, this.screen);
    this.term.open(this.screen);
    this.root.dataset.state = "paused";
    this.updateMarkers();
  }

  ready() {
    this.root.dataset.ready = "1";
    this.root.dataset.readyMs = String(Math.round(performance.now() - this.started));
    this.root.dataset.readyAt = String(Math.round(performance.now())); // since navigation start
    this.play();
  }

  // Marker ticks along a bar as long as the recording so far: one per command start.
  updateMarkers() {
    if (!this.markerBar) return;
    const total = Math.max(this.duration(), 0.001);
    this.markerBar.replaceChildren(...this.markers.map((m) => {
      const tick = el("button", { type: "button", class: "player-marker", "data-testid": "player-marker", "data-seq": m.seq ?? "", title: `${clock(m.t)} ${m.label}`,
        onclick: () => this.seekToCommand(m.seq) });
      tick.style.left = `${(100 * m.t) / total}%`; // CSSOM, allowed by the page's CSP
      return tick;
    }));
  }

  duration() {
    return this.events.length ? this.events[this.events.length - 1][0] : 0;
  }

  showTime() {
    if (this.time) this.time.textContent = `${clock(this.pos)} / ${clock(this.duration())}${this.done ? "" : "…"}`;
    this.root.dataset.position = String(this.pos);
  }

  apply(event) {
    const [, code, data] = event;
    if (code === "o") this.term.write(data);
    else if (code === "m") this.command.textContent = data;
    else if (code === "r") {
      const size = parseSize(data);
      if (size) this.term.resize(size[0], size[1]);
    }
  }

  play() {
    if (!this.term) return;
    if (this.index >= this.events.length && this.done) this.rewind();
    this.playing = true;
    this.playButton.textContent = "Pause";
    this.root.dataset.state = "playing";
    this.step();
  }

  pause() {
    this.playing = false;
    clearTimeout(this.timer);
    if (this.playButton) this.playButton.textContent = "Play";
    this.root.dataset.state = "paused";
  }

  rewind() {
    this.command.textContent = "";
    this.term.reset();
    this.term.resize(this.header.width, this.header.height);
    this.index = 0;
    this.pos = 0;
  }

  reschedule() {
    if (this.playing) {
      clearTimeout(this.timer);
      this.step();
    }
  }

  // Apply every event that is due, then sleep until the next one (pauses capped).
  step() {
    clearTimeout(this.timer);
    this.idle = false;
    if (!this.playing) return;
    while (this.index < this.events.length && this.events[this.index][0] <= this.pos) this.apply(this.events[this.index++]);
    this.showTime();
    if (this.index >= this.events.length) {
      if (this.done) {
        this.playing = false;
        this.playButton.textContent = "Play";
        this.root.dataset.state = "ended";
      }
      else this.idle = true; // wake() goes on when more events arrive
      return;
    }
    const next = this.events[this.index][0];
    const wait = Math.min(next - this.pos, IDLE_LIMIT_S) / this.speed;
    this.timer = setTimeout(() => { this.pos = next; this.step(); }, wait * 1000);
  }

  wake() {
    for (const resolve of this.waiters.splice(0)) resolve();
    if (this.playing && this.idle) {
      this.idle = false;
      this.step();
    }
  }

  async marker(seq) {
    for (;;) {
      const found = this.markers.find((m) => m.seq === seq);
      if (found || this.done) return found || null;
      await new Promise((resolve) => this.waiters.push(resolve));
    }
  }

  // The screen as it was when command `seq` started, then play on from there.
  async seekToCommand(seq) {
    if (!this.term) return false;
    const target = await this.marker(seq);
    if (!target) return false;
    this.pause();
    this.rewind();
    let pending = "";
    for (let i = 0; i < target.index; i++) {
      const [, code, data] = this.events[i];
      if (code === "o") pending += data;
      else if (code === "r") {
        if (pending) this.term.write(pending);
        pending = "";
        this.apply(this.events[i]);
      }
    }
    if (pending) this.term.write(pending);
    this.index = target.index;
    this.pos = target.t;
    this.command.textContent = target.label;
    this.root.dataset.seekedTo = String(seq);
    for (const tick of this.markerBar.querySelectorAll(".player-marker")) tick.classList.toggle("current", Number(tick.dataset.seq) === seq);
    this.play();
    return true;
  }

  text() {
    const buffer = this.term.buffer.active;
    const lines = [];
    for (let y = 0; y < buffer.length; y++) lines.push(buffer.getLine(y).translateToString(true));
    return lines.join("\n");
  }
}

// The screen when a command ended, rendered on the sink (GET /api/sessions/<id>/screen?seq=N).
export function screenView(screen) {
  const pre = el("pre", { class: "screen", "data-testid": "screen-text" });
  const named = new Set(["black", "red", "green", "brown", "blue", "magenta", "cyan", "white"]);
  screen.cells.forEach((runs, y) => {
    for (const run of runs) {
      const span = el("span", {}, run.text);
      const fg = run.reverse ? run.bg : run.fg;
      const bg = run.reverse ? run.fg : run.bg;
      if (named.has(fg)) span.classList.add(`fg-${fg}`);
      else if (/^[0-9a-f]{6}$/i.test(fg)) span.style.color = `#${fg}`;
      if (named.has(bg)) span.classList.add(`bg-${bg}`);
      else if (/^[0-9a-f]{6}$/i.test(bg)) span.style.backgroundColor = `#${bg}`;
      if (run.bold) span.classList.add("bold");
      if (run.underscore) span.classList.add("underline");
      if (run.italics) span.classList.add("italic");
      pre.append(span);
    }
    if (y < screen.cells.length - 1) pre.append("\n");
  });
  return pre;
}
