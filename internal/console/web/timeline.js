// A session's timeline, drawn for a person answering "I could not hear Bob at 10:42": one lane per
// participant; in it a row with the joined→left spans and the publish spans over them, the error markers
// with their codes, and one row per publisher the participant subscribed to, with the subscribe spans.
// The time axis has wall-clock labels (this browser's time zone); every span and marker has a title (the
// hover text) and an aria-label saying the same, and the hover line tells the time under the pointer.
//
// The DOM carries what was drawn, for tests and for copying: a lane is .lane[data-participant-id]; a span is
// .span[data-kind=present|publish|subscribe][data-start][data-end] (data-end "" while still open) with
// data-remote for subscriptions; a marker is .marker[data-name][data-code][data-time]. Times are the API's
// eventTime strings as they came.

const TICK_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map((s) => s * 1000);

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

const clock = (t, ms) => new Date(t).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false }) +
  (ms ? "." + String(new Date(t).getMilliseconds()).padStart(3, "0") : "");

function length(ms) {
  if (ms < 1000) return ms + " ms";
  const s = Math.round(ms / 1000);
  if (s < 60) return s + " s";
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${s % 60} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

// spansOf pairs a participant's starts with their stops. An event list is in order (the API's order, the
// stream's order); a start with no stop is open: it lasts until now, or the session's end.
export function spansOf(events) {
  const spans = [];
  const open = new Map(); // key -> span
  const begin = (kind, e, remote) => {
    const key = kind + "|" + (remote || "");
    if (open.has(key)) return; // a repeated start: the first counts
    const s = { kind, start: e.eventTime, end: "", remote: remote || "" };
    open.set(key, s);
    spans.push(s);
  };
  const end = (kind, e, remote) => {
    const key = kind + "|" + (remote || "");
    const s = open.get(key);
    if (s) {
      s.end = e.eventTime;
      open.delete(key);
    }
  };
  const markers = [];
  for (const e of events) {
    switch (e.name) {
      case "JOINED": begin("present", e); break;
      case "LEFT":
        // Nothing outlives its participant's leaving (the server writes the stops first; a span drawn from
        // a partial history still ends here).
        for (const [key, s] of open) {
          s.end = e.eventTime;
          open.delete(key);
        }
        break;
      case "PUBLISH_STARTED": begin("publish", e); break;
      case "PUBLISH_STOPPED": end("publish", e); break;
      case "SUBSCRIBE_STARTED": begin("subscribe", e, e.remoteParticipantId); break;
      case "SUBSCRIBE_STOPPED": end("subscribe", e, e.remoteParticipantId); break;
      default:
        if (e.errorCode || /ERROR/.test(e.name) || /RECORDING/.test(e.name)) markers.push(e);
    }
  }
  return { spans, markers };
}

// renderTimeline draws into container. participants are the API's participant summaries; events maps a
// participant id to its events in order; start and end bound the axis (ISO strings; end null while live).
export function renderTimeline(container, { participants, events, start, end }) {
  const now = Date.now();
  const endOpen = end ? new Date(end).getTime() : now;
  let t0 = start ? new Date(start).getTime() : Infinity;
  let t1 = endOpen;
  for (const list of events.values()) {
    for (const e of list) {
      const t = new Date(e.eventTime).getTime();
      t0 = Math.min(t0, t);
      t1 = Math.max(t1, t);
    }
  }
  if (!isFinite(t0)) t0 = t1 - 60000;
  if (t1 - t0 < 1000) t1 = t0 + 1000;
  const pct = (iso) => ((new Date(iso).getTime() - t0) / (t1 - t0)) * 100;
  const names = new Map(participants.map((p) => [p.participantId, p.userId || p.participantId]));
  const who = (id) => names.get(id) || id;

  const root = el("div", "timeline");
  root.setAttribute("role", "group");
  root.setAttribute("aria-label", `Session timeline from ${clock(t0)} to ${clock(t1)}`);

  // The axis: about eight wall-clock ticks at a round step.
  const step = TICK_STEPS.find((s) => (t1 - t0) / s <= 8) || TICK_STEPS[TICK_STEPS.length - 1];
  const axis = el("div", "axis");
  axis.setAttribute("aria-hidden", "true");
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
    const frac = (t - t0) / (t1 - t0);
    const tick = el("span", frac > 0.9 ? "tick end" : "tick", clock(t)); // near the right edge: text on the left
    tick.style.left = frac * 100 + "%";
    tick.title = new Date(t).toString();
    axis.append(tick);
  }
  const day = new Date(t0).toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
  root.append(el("div", "axis-label muted", end ? day : day + ", live until now"), axis);

  const lanes = [...participants].sort((a, b) => firstTime(events.get(a.participantId)) - firstTime(events.get(b.participantId)) ||
    a.participantId.localeCompare(b.participantId));
  for (const p of lanes) {
    const name = who(p.participantId);
    const { spans, markers } = spansOf(events.get(p.participantId) || []);
    const lane = el("div", "lane");
    lane.dataset.participantId = p.participantId;
    lane.setAttribute("role", "group");
    lane.setAttribute("aria-label", `${name}, participant ${p.participantId}`);

    const label = el("div", "lane-label");
    label.append(el("span", "name", p.userId || "(no user id)"), el("span", "id", p.participantId));
    const meta = [];
    if (p.state) meta.push(p.state.toLowerCase());
    if (p.published) meta.push("published");
    if (p.recordingState && p.recordingState !== "DISABLED") meta.push("recording " + p.recordingState.toLowerCase());
    if (meta.length) label.append(el("span", "meta", meta.join(" · ")));
    // The client, when the caller read the participants with GetParticipant.
    const client = [[p.browserName, p.browserVersion], [p.osName, p.osVersion]].map((x) => x.filter(Boolean).join(" ")).filter(Boolean);
    if (client.length) label.append(el("span", "meta client", client.join(" · ")));
    const details = [["protocol", p.protocol], ["sdk", p.sdkVersion], ["isp", p.ispName]].filter(([, v]) => v).map(([k, v]) => k + " " + v);
    label.title = [name, p.participantId, ...client, ...details].join("\n");
    if (p.recordingState) label.dataset.recordingState = p.recordingState;

    const track = el("div", "lane-track");
    const main = el("div", "row main");
    track.append(main);
    const subRows = new Map(); // remote id -> row
    for (const s of spans) {
      const e = s.end || (end ? end : "");
      const right = e ? pct(e) : pct(new Date(endOpen).toISOString());
      const d = el("div", "span " + s.kind + (s.end ? "" : " open"));
      d.dataset.kind = s.kind;
      d.dataset.start = s.start;
      d.dataset.end = s.end;
      d.style.left = pct(s.start) + "%";
      d.style.width = Math.max(0, right - pct(s.start)) + "%";
      const until = s.end ? clock(s.end, true) : end ? "the session's end" : "now";
      const dur = length((s.end ? new Date(s.end).getTime() : endOpen) - new Date(s.start).getTime());
      let what;
      if (s.kind === "present") what = `${name} joined at ${clock(s.start, true)}, ${s.end ? "left at " + until : "still there at " + until}`;
      else if (s.kind === "publish") what = `${name} published from ${clock(s.start, true)} to ${until}`;
      else what = `${name} received ${who(s.remote)} from ${clock(s.start, true)} to ${until}`;
      what += ` (${dur})`;
      d.title = what;
      d.setAttribute("aria-label", what);
      d.setAttribute("role", "img");
      if (s.kind === "subscribe") {
        d.dataset.remote = s.remote;
        d.textContent = "← " + who(s.remote);
        let row = subRows.get(s.remote);
        if (!row) {
          row = el("div", "row sub");
          row.dataset.remote = s.remote;
          row.append(el("span", "row-name", "← " + who(s.remote)));
          subRows.set(s.remote, row);
          track.append(row);
        }
        row.append(d);
      } else {
        if (s.kind === "publish") d.textContent = "publishing";
        main.append(d);
      }
    }
    for (const m of markers) {
      const mk = el("div", "marker" + (/RECORDING/.test(m.name) ? " recording" : ""));
      mk.dataset.name = m.name;
      mk.dataset.code = m.errorCode || "";
      mk.dataset.time = m.eventTime;
      mk.style.left = pct(m.eventTime) + "%";
      const text = `${name}: ${m.name}${m.errorCode ? " " + m.errorCode : ""}${m.remoteParticipantId ? " (publisher " + who(m.remoteParticipantId) + ")" : ""} at ${clock(m.eventTime, true)}`;
      mk.title = text;
      mk.setAttribute("role", "img");
      mk.setAttribute("aria-label", text);
      mk.append(el("span", "code", m.errorCode || m.name));
      main.append(mk);
    }
    lane.append(label, track);
    root.append(lane);
  }

  // The hover line: the wall-clock time under the pointer, to the millisecond.
  const cursor = el("div", "cursor");
  cursor.hidden = true;
  const cursorText = el("span");
  cursor.append(cursorText);
  root.append(cursor);
  root.addEventListener("mousemove", (ev) => {
    const r = axis.getBoundingClientRect();
    const x = ev.clientX - r.left;
    if (x < 0 || x > r.width) {
      cursor.hidden = true;
      return;
    }
    cursor.hidden = false;
    cursor.style.left = axis.offsetLeft + x + "px";
    cursorText.textContent = clock(t0 + (x / r.width) * (t1 - t0), true);
  });
  root.addEventListener("mouseleave", () => (cursor.hidden = true));

  container.replaceChildren(root);
}

function firstTime(list) {
  return list && list.length ? new Date(list[0].eventTime).getTime() : Infinity;
}
