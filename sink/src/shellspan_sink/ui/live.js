// Live updates from the sink's Server-Sent Events (/api/changes, /api/sessions/<id>/events).
// Read with fetch rather than EventSource, so the API token goes along as a header. A stream
// that breaks is reopened with Last-Event-ID, so nothing is missed or shown twice; it stops
// for good when `isCurrent()` turns false (the page moved on) or the server ends it.

const TOKEN_KEY = "shellspan.token";
const RETRY_MS = [500, 1000, 2000, 5000];

function parseEvents(buffer, onEvent) {
  // Complete events end with a blank line; returns what is left of an incomplete one.
  let start = 0;
  for (;;) {
    const end = buffer.indexOf("\n\n", start);
    if (end < 0) return buffer.slice(start);
    let kind = "message";
    const data = [];
    let id = null;
    for (const line of buffer.slice(start, end).split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const name = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (name === "event") kind = value;
      else if (name === "data") data.push(value);
      else if (name === "id") id = value;
    }
    if (data.length) onEvent({ kind, id, data: JSON.parse(data.join("\n")) });
    start = end + 2;
  }
}

// Follow a stream; `onEvent({kind, id, data})` for each event; `onStatus(text)` says whether it
// is connected. Resolves when the stream ends (the server closed it after its last event, or
// answered an error that retrying cannot mend, such as 404).
export async function follow(path, params, { onEvent, onStatus = () => {}, isCurrent }) {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== "") qs.set(k, v);
  const url = path + (qs.toString() ? `?${qs}` : "");
  let lastId = null;
  let failures = 0;
  let finished = false;
  const controller = new AbortController();
  const watchdog = setInterval(() => { if (!isCurrent()) controller.abort(); }, 500);
  try {
    while (isCurrent() && !finished) {
      try {
        const headers = { Accept: "text/event-stream" };
        const token = localStorage.getItem(TOKEN_KEY);
        if (token) headers.Authorization = `Bearer ${token}`;
        if (lastId) headers["Last-Event-ID"] = lastId;
        const resp = await fetch(url, { headers, cache: "no-store", signal: controller.signal });
        if (!resp.ok) {
          if (resp.status !== 503) { onStatus(""); return resp.status; }
          throw new Error("busy");
        }
        onStatus("connected");
        failures = 0;
        const reader = resp.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer = parseEvents(buffer + decoder.decode(value, { stream: true }).replace(/\r/g, ""), (ev) => {
            if (ev.id !== null) lastId = ev.id;
            if (ev.kind === "end") finished = true;
            if (isCurrent()) onEvent(ev);
          });
        }
      } catch (err) {
        if (!isCurrent()) break;
      }
      if (finished || !isCurrent()) break;
      onStatus("reconnecting");
      await new Promise((r) => setTimeout(r, RETRY_MS[Math.min(failures, RETRY_MS.length - 1)]));
      failures += 1;
    }
  } finally {
    clearInterval(watchdog);
  }
  return 200;
}
