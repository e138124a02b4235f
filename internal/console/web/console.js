// The console: an operator's view of openstage through the same AWS API the CLI uses, signed here with the
// API key the operator logs in with (sigv4.js), and kept live by the event stream (GET /events/stream).
// Views, by the URL's hash: #/ the stages; #/stage/<arn> a stage, its live session and its past sessions;
// #/stage/<arn>/session/<id> a session's timeline.
import { signRequest } from "./sigv4.js";
import { renderTimeline } from "./timeline.js";

const $ = (id) => document.getElementById(id);
const KEY_STORAGE = "openstage.console.key";

let cred = null; // {accessKeyId, secretAccessKey, region, service}
let leaveView = () => {}; // closes what the current view opened (its event stream, its timers)
let generation = 0; // counts the views shown: a view whose number is not current was left while it loaded

// stale makes the check a loading view does after each await: true once the person has gone elsewhere.
function staleCheck() {
  const mine = generation;
  return () => mine !== generation;
}

// coalesce runs f once, wait ms after it is first asked, however often it is asked meanwhile. (A timer
// rather than requestAnimationFrame, which a hidden tab never runs: the page keeps up in the background.)
function coalesce(f, wait) {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    const run = () => {
      pending = false;
      f();
    };
    setTimeout(run, wait);
  };
}

// ---------------------------------------------------------------------------------------------------------
// Messages

function showError(text) {
  $("error").textContent = text || "";
  $("error").hidden = !text;
}

function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}

function fmtDuration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 60) return s + " s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + " min " + (s % 60) + " s";
  return Math.floor(m / 60) + " h " + (m % 60) + " min";
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("data-")) e.dataset[k.slice(5).replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

const stageID = (arn) => arn.slice(arn.lastIndexOf("/") + 1);

// ---------------------------------------------------------------------------------------------------------
// The API

class APIError extends Error {
  constructor(type, message, status) {
    super(type + ": " + message);
    this.type = type;
    this.status = status;
  }
}

// clockOffset is the server's clock minus this machine's, learnt when a signature is refused for its time
// (the server allows a few minutes either way): signing with the server's time lets a console run on a
// machine whose clock is off, as the AWS SDKs' clock-skew correction does.
let clockOffset = 0;
const signingDate = () => new Date(Date.now() + clockOffset);

// learnClock reads the server's Date from a refusal for the time; it reports whether a retry may help.
function learnClock(res, message) {
  const server = Date.parse(res.headers.get("Date") || "");
  if (res.status !== 403 || !/Signature (expired|not yet current)/.test(message) || isNaN(server)) return false;
  const offset = server - Date.now();
  if (Math.abs(offset - clockOffset) < 2000) return false; // already corrected: something else is wrong
  clockOffset = offset;
  return true;
}

async function api(op, input = {}, retried = false) {
  const url = new URL("/" + op, location.origin).toString();
  const body = JSON.stringify(input);
  const headers = await signRequest(cred, { method: "POST", url, headers: { "Content-Type": "application/json" }, body, date: signingDate() });
  const res = await fetch(url, { method: "POST", headers, body, cache: "no-store", credentials: "omit" });
  const text = await res.text();
  let data = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = { message: text };
  }
  if (!res.ok) {
    if (!retried && learnClock(res, data.message || text)) return api(op, input, true);
    throw new APIError(res.headers.get("x-amzn-ErrorType") || "HTTP " + res.status, data.message || text, res.status);
  }
  return data;
}

// all reads every page of a list operation.
async function all(op, input, member) {
  const out = [];
  let nextToken;
  do {
    const page = await api(op, { ...input, maxResults: 100, nextToken });
    out.push(...(page[member] || []));
    nextToken = page.nextToken;
  } while (nextToken);
  return out;
}

// sessionHistory reads a session's participants and every participant's events.
async function sessionHistory(stageArn, sessionId) {
  const participants = await all("ListParticipants", { stageArn, sessionId }, "participants");
  const events = new Map();
  await Promise.all(participants.map(async (p) => {
    events.set(p.participantId, await all("ListParticipantEvents", { stageArn, sessionId, participantId: p.participantId }, "events"));
  }));
  return { participants, events };
}

// ---------------------------------------------------------------------------------------------------------
// The event stream: server-sent events read with fetch, so that the request carries a SigV4 signature like
// the API's (EventSource cannot send headers). Resumes after Last-Event-ID when the connection drops.

class EventStream {
  constructor({ stageArn, onEvent, onConnect }) {
    this.stageArn = stageArn;
    this.onEvent = onEvent;
    this.onConnect = onConnect || (() => {});
    this.lastId = null;
    this.retry = 2000;
    this.closed = false;
    this.abort = null;
    this.connects = 0;
    this.opened = new Promise((resolve) => (this.resolveOpened = resolve));
    this.run();
  }

  close() {
    this.closed = true;
    if (this.abort) this.abort.abort();
    setLiveState("", "");
  }

  async run() {
    while (!this.closed) {
      try {
        const url = new URL("/events/stream", location.origin);
        if (this.stageArn) url.searchParams.set("stage", this.stageArn);
        const headers = await signRequest(cred, { method: "GET", url: url.toString(), date: signingDate() });
        if (this.lastId !== null) headers["Last-Event-ID"] = this.lastId;
        this.abort = new AbortController();
        const res = await fetch(url, { headers, signal: this.abort.signal, cache: "no-store", credentials: "omit" });
        if (!res.ok) throw new Error(`the event stream answered ${res.status}: ${(await res.text()).trim()}`);
        setLiveState("connected", "live updates on");
        this.connects++;
        this.resolveOpened(true);
        await this.onConnect(this.connects, this.lastId !== null);
        await this.read(res.body);
        if (!this.closed) throw new Error("the event stream ended");
      } catch (err) {
        if (this.closed) return;
        setLiveState("reconnecting", "live updates interrupted: " + (err.message || err));
        this.resolveOpened(false);
      }
      await new Promise((r) => setTimeout(r, this.retry));
    }
  }

  // read parses the text/event-stream format (html.spec.whatwg.org, "Server-sent events": lines of
  // field: value, a blank line ending each event).
  async read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    let data = [];
    let event = "";
    let id = this.lastId;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      for (;;) {
        const nl = buf.search(/\r\n|\n|\r/);
        if (nl < 0 || (buf[nl] === "\r" && nl === buf.length - 1)) break; // a CR may be half of a CRLF
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf.startsWith("\r\n", nl) ? 2 : 1));
        if (line === "") {
          if (data.length) {
            this.lastId = id;
            let payload = null;
            try {
              payload = JSON.parse(data.join("\n"));
            } catch {
              payload = null;
            }
            if (payload) this.onEvent(event || "message", payload, id);
          }
          data = [];
          event = "";
          continue;
        }
        if (line.startsWith(":")) continue; // a comment: the heartbeat
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let v = colon < 0 ? "" : line.slice(colon + 1);
        if (v.startsWith(" ")) v = v.slice(1);
        if (field === "data") data.push(v);
        else if (field === "event") event = v;
        else if (field === "id") id = v;
        else if (field === "retry" && /^\d+$/.test(v)) this.retry = Number(v);
      }
    }
  }
}

function setLiveState(cls, text) {
  const b = $("live-state");
  b.className = "badge " + cls;
  b.textContent = cls === "connected" ? "live" : cls === "reconnecting" ? "reconnecting…" : "";
  b.title = text;
}

// eventFromStream turns a stream event (EventBridge-shaped, IVS's field names in detail) into the API's
// event shape, which the timeline draws.
function eventFromStream(kind, ev) {
  const d = ev.detail || {};
  return {
    name: kind, participantId: d.participant_id, eventTime: d.event_time, remoteParticipantId: d.remote_participant_id,
    errorCode: d.error_code, userId: d.user_id, sessionId: d.session_id,
  };
}

const eventKey = (e) => [e.participantId, e.name, e.eventTime, e.remoteParticipantId || "", e.errorCode || ""].join("|");

// ---------------------------------------------------------------------------------------------------------
// Views

function show(id) {
  for (const s of ["login", "stages", "stage", "session"]) $(s).hidden = s !== id;
  document.body.dataset.view = id;
}

async function route() {
  generation++;
  leaveView();
  leaveView = () => {};
  showError("");
  if (!cred) {
    $("who").hidden = true;
    show("login");
    return;
  }
  $("who").hidden = false;
  $("who-key").textContent = cred.accessKeyId + " · " + cred.region;
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  try {
    if (parts[0] === "stage" && parts[1] && parts[2] === "session" && parts[3]) await sessionView(parts[1], parts[3]);
    else if (parts[0] === "stage" && parts[1]) await stageView(parts[1]);
    else await stagesView();
  } catch (err) {
    showError(err.message || String(err));
    if (err.type === "UnrecognizedClientException" || err.type === "InvalidSignatureException") {
      $("who-key").textContent += " (refused)";
    }
  }
}

const stageHref = (arn) => "#/stage/" + encodeURIComponent(arn);
const sessionHref = (arn, id) => stageHref(arn) + "/session/" + encodeURIComponent(id);

async function stagesView() {
  show("stages");
  const stale = staleCheck();
  const load = async () => {
    const stages = await all("ListStages", {}, "stages");
    stages.sort((a, b) => (a.name || "").localeCompare(b.name || "") || a.arn.localeCompare(b.arn));
    $("stage-rows").replaceChildren(...stages.map((s) => el("tr", { "data-arn": s.arn },
      el("td", {}, el("a", { href: stageHref(s.arn), text: s.name || "(no name)" })),
      el("td", { class: "mono", text: stageID(s.arn) }),
      el("td", {}, s.activeSessionId ? el("span", { class: "live-dot", text: "● live " }) : null,
        el("span", { class: "id", text: s.activeSessionId || "—" })))));
    $("no-stages").hidden = stages.length > 0;
    document.body.dataset.loaded = "stages";
  };
  // Sessions starting and ending change the list's last column (read again at most once a second).
  const reload = coalesce(() => !stale() && load().catch((e) => showError(e.message)), 1000);
  const stream = new EventStream({
    onEvent: (kind) => {
      if (kind === "SESSION_STARTED" || kind === "SESSION_ENDED") reload();
    },
  });
  leaveView = () => stream.close();
  await stream.opened;
  if (!stale()) await load();
}

async function stageView(arn) {
  show("stage");
  const stale = staleCheck();
  const { stage } = await api("GetStage", { arn });
  if (stale()) return;
  $("stage-name").textContent = stage.name || "(no name)";
  $("stage-arn").textContent = stage.arn;
  $("token-out").hidden = true;
  $("token-form").onsubmit = (e) => {
    e.preventDefault();
    createToken(stage.arn).catch((err) => showError(err.message));
  };

  // The live session: its participants and events, from the API once, then from the stream.
  const live = { sessionId: stage.activeSessionId || null, participants: new Map(), events: new Map(), seen: new Set(), start: null };
  let ready = false; // the API's view has been read; stream events before it are kept for after
  const early = [];

  const apply = (e) => {
    if (!e.participantId || live.seen.has(eventKey(e))) return;
    live.seen.add(eventKey(e));
    if (!live.participants.has(e.participantId)) {
      live.participants.set(e.participantId, { participantId: e.participantId, userId: e.userId || "", firstJoinTime: e.eventTime, recordingState: "" });
      live.events.set(e.participantId, []);
    }
    live.events.get(e.participantId).push(e);
  };

  const loadLive = async () => {
    const { stage: s } = await api("GetStage", { arn });
    live.sessionId = s.activeSessionId || null;
    live.participants = new Map();
    live.events = new Map();
    live.seen = new Set();
    live.start = null;
    if (live.sessionId) {
      const [{ stageSession }, h] = await Promise.all([
        api("GetStageSession", { stageArn: arn, sessionId: live.sessionId }),
        sessionHistory(arn, live.sessionId),
      ]);
      live.start = stageSession.startTime;
      for (const p of h.participants) {
        live.participants.set(p.participantId, p);
        live.events.set(p.participantId, []);
        for (const e of h.events.get(p.participantId) || []) apply(e);
      }
    }
  };

  const sessions = async () => {
    const list = await all("ListStageSessions", { stageArn: arn }, "stageSessions");
    list.sort((a, b) => (b.startTime || "").localeCompare(a.startTime || ""));
    $("session-rows").replaceChildren(...list.map((s) => el("tr", { "data-session-id": s.sessionId },
      el("td", {}, el("a", { href: sessionHref(arn, s.sessionId), class: "id", text: s.sessionId }),
        s.endTime ? null : el("span", { class: "live-dot", text: " ● live" })),
      el("td", { text: fmtTime(s.startTime) }),
      el("td", { text: s.endTime ? fmtTime(s.endTime) : "—" }),
      el("td", { text: s.startTime ? fmtDuration(new Date(s.endTime || Date.now()) - new Date(s.startTime)) : "" }))));
  };

  // Drawn at most every 50 ms, however many events arrive.
  const render = coalesce(() => !stale() && renderLive(arn, live), 50);

  const stream = new EventStream({
    stageArn: arn,
    onEvent: (kind, ev) => {
      const e = eventFromStream(kind, ev);
      if (!ready) {
        early.push(e);
        return;
      }
      if (kind === "SESSION_STARTED") {
        live.sessionId = e.sessionId;
        live.participants = new Map();
        live.events = new Map();
        live.seen = new Set();
        live.start = e.eventTime;
        sessions().catch((err) => showError(err.message));
      } else if (kind === "SESSION_ENDED") {
        if (e.sessionId === live.sessionId) live.sessionId = null;
        sessions().catch((err) => showError(err.message));
      } else if (e.sessionId) {
        if (!live.sessionId) {
          live.sessionId = e.sessionId;
          live.start = e.eventTime;
        }
        if (e.sessionId === live.sessionId) apply(e);
      }
      render();
    },
    // After a reconnection that could not resume (no event seen yet), read the API's view again.
    onConnect: async (n, resumed) => {
      if (n > 1 && !resumed) {
        await loadLive();
        render();
      }
    },
  });
  const tick = setInterval(() => live.sessionId && render(), 5000); // open spans grow with the clock
  leaveView = () => {
    stream.close();
    clearInterval(tick);
  };
  await stream.opened; // from here on the stream holds every event: read the API's view, then apply them
  if (stale()) return;
  await Promise.all([loadLive(), sessions()]);
  if (stale()) return;
  ready = true;
  for (const e of early.splice(0)) {
    if (e.sessionId && e.sessionId === live.sessionId) apply(e);
  }
  renderLive(arn, live);
  document.body.dataset.loaded = "stage";
}

// participantState is what a participant's events say it is now.
function participantState(events) {
  const st = { state: "", publishing: false, subs: new Set() };
  for (const e of events) {
    switch (e.name) {
      case "JOINED": st.state = "CONNECTED"; break;
      case "LEFT": st.state = "DISCONNECTED"; st.publishing = false; st.subs.clear(); break;
      case "PUBLISH_STARTED": st.publishing = true; break;
      case "PUBLISH_STOPPED": st.publishing = false; break;
      case "SUBSCRIBE_STARTED": st.subs.add(e.remoteParticipantId); break;
      case "SUBSCRIBE_STOPPED": st.subs.delete(e.remoteParticipantId); break;
    }
  }
  return st;
}

function renderLive(arn, live) {
  $("live-session").textContent = live.sessionId || "";
  $("no-live").hidden = !!live.sessionId;
  $("live-table").hidden = !live.sessionId;
  $("stage-active").replaceChildren(live.sessionId ? el("a", { href: sessionHref(arn, live.sessionId), class: "id", text: live.sessionId }) : "none");
  const names = new Map([...live.participants.values()].map((p) => [p.participantId, p.userId || p.participantId]));
  const rows = [];
  for (const p of live.participants.values()) {
    const st = participantState(live.events.get(p.participantId) || []);
    const state = st.state || p.state || "";
    rows.push(el("tr", {
      class: state === "DISCONNECTED" ? "gone" : "", "data-participant-id": p.participantId, "data-state": state,
      "data-publishing": String(st.publishing), "data-subscribed": [...st.subs].sort().join(","),
    },
    el("td", { text: p.userId || "" }),
    el("td", { class: "mono", text: p.participantId }),
    el("td", { text: state }),
    el("td", { text: st.publishing ? "yes" : "no" }),
    el("td", { text: [...st.subs].map((id) => names.get(id) || id).join(", ") || "—" }),
    el("td", { text: fmtTime(p.firstJoinTime) })));
  }
  $("live-rows").replaceChildren(...rows);
  if (live.sessionId) {
    renderTimeline($("live-timeline"), { participants: [...live.participants.values()], events: live.events, start: live.start, end: null });
  } else {
    $("live-timeline").replaceChildren();
  }
  $("live").dataset.sessionId = live.sessionId || "";
}

async function createToken(stageArn) {
  const capabilities = [];
  if ($("cap-publish").checked) capabilities.push("PUBLISH");
  if ($("cap-subscribe").checked) capabilities.push("SUBSCRIBE");
  if (!capabilities.length) throw new Error("A token needs at least one capability: publish or subscribe.");
  const input = { stageArn, capabilities, duration: Number($("token-duration").value) || 720 };
  const userId = $("token-user").value.trim();
  if (userId) input.userId = userId;
  const { participantToken: t } = await api("CreateParticipantToken", input);
  $("token-text").value = t.token;
  $("token-who").textContent = t.userId || "an anonymous participant";
  $("token-pid").textContent = t.participantId;
  $("token-exp").textContent = fmtTime(t.expirationTime);
  $("join-link").href = "join?token=" + encodeURIComponent(t.token);
  $("token-out").hidden = false;
  $("token-out").dataset.participantId = t.participantId;
}

async function sessionView(arn, sessionId) {
  show("session");
  const stale = staleCheck();
  $("timeline").replaceChildren();
  delete $("timeline").dataset.ready;
  $("session-id").textContent = sessionId;
  $("session-stage").href = stageHref(arn);
  const [{ stageSession: s }, h] = await Promise.all([api("GetStageSession", { stageArn: arn, sessionId }), sessionHistory(arn, sessionId)]);
  if (stale()) return;
  $("session-start").textContent = fmtTime(s.startTime);
  $("session-end").textContent = s.endTime ? fmtTime(s.endTime) + " (" + fmtDuration(new Date(s.endTime) - new Date(s.startTime)) + ")" : "still live";
  $("session-count").textContent = String(h.participants.length);
  // Each participant's client (browser, OS, SDK), for the lanes' labels.
  const detailed = await Promise.all(h.participants.map((p) => api("GetParticipant", { stageArn: arn, sessionId, participantId: p.participantId })
    .then((r) => ({ ...p, ...r.participant }), () => p)));
  if (stale()) return;
  renderTimeline($("timeline"), { participants: detailed, events: h.events, start: s.startTime, end: s.endTime || null });
  renderEventTable(detailed, h.events);
  $("timeline").dataset.ready = "true";
  document.body.dataset.loaded = "session";
}

// renderEventTable lists a session's events in time order: the timeline's text twin, to read, search and copy.
function renderEventTable(participants, events) {
  const names = new Map(participants.map((p) => [p.participantId, p.userId || p.participantId]));
  const rows = [];
  for (const list of events.values()) rows.push(...list);
  rows.sort((a, b) => a.eventTime.localeCompare(b.eventTime) || a.participantId.localeCompare(b.participantId));
  const ms = (iso) => fmtTime(iso) + "." + iso.slice(20, 23);
  $("event-rows").replaceChildren(...rows.map((e) => el("tr", { "data-participant-id": e.participantId, "data-name": e.name },
    el("td", { class: "mono", text: ms(e.eventTime), title: e.eventTime }),
    el("td", { text: names.get(e.participantId) || "" }),
    el("td", { class: "mono", text: e.participantId }),
    el("td", { text: e.name }),
    el("td", { text: e.remoteParticipantId ? names.get(e.remoteParticipantId) || e.remoteParticipantId : "" }),
    el("td", { text: e.errorCode || "" }))));
  $("event-count").textContent = String(rows.length);
}

// ---------------------------------------------------------------------------------------------------------
// Logging in

function loadKey() {
  try {
    const k = JSON.parse(sessionStorage.getItem(KEY_STORAGE) || "null");
    if (k && k.accessKeyId && k.secretAccessKey && k.region) cred = { ...k, service: "ivs" };
  } catch {
    cred = null;
  }
}

async function login(e) {
  e.preventDefault();
  showError("");
  const k = { accessKeyId: $("akid").value.trim(), secretAccessKey: $("secret").value, region: $("region").value.trim() };
  cred = { ...k, service: "ivs" };
  try {
    await api("ListStages", { maxResults: 1 }); // the key is checked before it is kept
  } catch (err) {
    cred = null;
    showError(err.type === "InvalidSignatureException" && /region/.test(err.message)
      ? "Wrong region: use the region openstage was started with (AWS_DEFAULT_REGION in its first-start message). " + err.message
      : "Login failed: " + err.message);
    return;
  }
  sessionStorage.setItem(KEY_STORAGE, JSON.stringify(k));
  $("secret").value = "";
  await route();
}

function logout() {
  sessionStorage.removeItem(KEY_STORAGE);
  cred = null;
  location.hash = "#/";
  route();
}

$("login-form").addEventListener("submit", login);
$("logout").addEventListener("click", logout);
window.addEventListener("hashchange", route);
loadKey();
route().finally(() => (document.body.dataset.ready = "true"));
