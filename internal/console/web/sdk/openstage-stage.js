// openstage-stage.js: a small browser client for openstage stages.
//
// One plain ES module, no build step and no dependencies. It speaks the wire protocol of the IVS client
// SDKs (docs/DESIGN.md §4.4), so the server has one protocol for Amazon's SDK
// and for this client:
//
//   - every endpoint comes from the participant token (whip_url, events_url); the token's signature is the
//     server's business, the client only reads the claims (base64url JSON) and checks the expiry;
//   - the events WebSocket at <events_url>?error_over_ws=1&topic=<stageId>/publishers&traceid=..., with the
//     token as its one subprotocol: STAGE_STATE (ordered by sequenceNumber), PING every 15 s,
//     aws:ivs:JOIN_ERROR and aws:ivs:DISCONNECT, SET_STATE for mute;
//   - publish: POST <whip_url>/publish/<participantId>; subscribe: POST <whip_url>/subscribe/<publisherId>,
//     SDP offers without trickle; DELETE <Location> to stop.
//
// The API is shaped like the IVS web broadcast SDK's stage API (a Stage with a strategy, join/leave,
// participant and stream events) so that its users find their way, but it is its own code and a smaller
// surface.

/** The client's version, sent as X-Stages-SDK and recorded by the server as the participant's sdkVersion.
 * The API model allows only [a-zA-Z0-9-_.,:;\s] there, hence no "/". */
export const SDK_VERSION = "openstage-web-0.1.0";

/** Events a Stage emits; subscribe with stage.on(name, handler). */
export const StageEvents = Object.freeze({
  /** (state: ConnectionState) */
  STAGE_CONNECTION_STATE_CHANGED: "stageConnectionStateChanged",
  /** (participant: ParticipantInfo) a remote participant appeared */
  STAGE_PARTICIPANT_JOINED: "stageParticipantJoined",
  /** (participant: ParticipantInfo) a remote participant is gone */
  STAGE_PARTICIPANT_LEFT: "stageParticipantLeft",
  /** (participant: ParticipantInfo) userId, attributes, publishing or mute state changed */
  STAGE_PARTICIPANT_UPDATED: "stageParticipantUpdated",
  /** (participant: ParticipantInfo, state: PublishState) */
  STAGE_PARTICIPANT_PUBLISH_STATE_CHANGED: "stageParticipantPublishStateChanged",
  /** (participant: ParticipantInfo, state: SubscribeState) */
  STAGE_PARTICIPANT_SUBSCRIBE_STATE_CHANGED: "stageParticipantSubscribeStateChanged",
  /** (participant: ParticipantInfo, streams: StageStream[]) */
  STAGE_PARTICIPANT_STREAMS_ADDED: "stageParticipantStreamsAdded",
  /** (participant: ParticipantInfo, streams: StageStream[]) */
  STAGE_PARTICIPANT_STREAMS_REMOVED: "stageParticipantStreamsRemoved",
  /** (participant: ParticipantInfo, stream: StageStream) a stream was muted or unmuted */
  STAGE_STREAM_MUTE_CHANGED: "stageStreamMuteChanged",
  /** (count: number) subscribe-only participants connected: they are counted, not listed (docs/DESIGN.md §4.3) */
  STAGE_SUBSCRIBER_COUNT_CHANGED: "stageSubscriberCountChanged",
  /** (reason: LeaveReason, error?: StageError) the stage is left for good */
  STAGE_LEFT: "stageLeft",
  /** (error: StageError) */
  ERROR: "error",
});

export const ConnectionState = Object.freeze({
  DISCONNECTED: "disconnected",
  CONNECTING: "connecting",
  CONNECTED: "connected",
  ERRORED: "errored",
});

export const PublishState = Object.freeze({
  NOT_PUBLISHED: "not_published",
  ATTEMPTING_PUBLISH: "attempting_publish",
  PUBLISHED: "published",
  ERRORED: "errored",
});

export const SubscribeState = Object.freeze({
  NOT_SUBSCRIBED: "not_subscribed",
  ATTEMPTING_SUBSCRIBE: "attempting_subscribe",
  SUBSCRIBED: "subscribed",
  ERRORED: "errored",
});

export const SubscribeType = Object.freeze({
  NONE: "none",
  AUDIO_ONLY: "audio_only",
  AUDIO_VIDEO: "audio_video",
});

export const StreamType = Object.freeze({ AUDIO: "audio", VIDEO: "video" });

export const LeaveReason = Object.freeze({
  USER_INITIATED: "user-initiated",
  PARTICIPANT_DISCONNECTED: "participant-disconnected",
  STAGE_DELETED: "stage-deleted",
  TOKEN_REUSED: "token-reused",
  SERVER_SHUTDOWN: "server-shutdown",
  CONNECTION_LOST: "connection-lost",
  JOIN_FAILED: "join-failed",
});

/** Codes of StageError. */
export const ErrorCode = Object.freeze({
  TOKEN_MALFORMED: "TOKEN_MALFORMED",
  TOKEN_EXPIRED: "TOKEN_EXPIRED",
  TOKEN_INVALID: "TOKEN_INVALID",
  NO_CAPABILITY: "NO_CAPABILITY",
  STAGE_FULL: "STAGE_FULL",
  STAGE_DELETED: "STAGE_DELETED",
  PARTICIPANT_DISCONNECTED: "PARTICIPANT_DISCONNECTED",
  PUBLISHER_NOT_FOUND: "PUBLISHER_NOT_FOUND",
  CODEC_MISMATCH: "CODEC_MISMATCH",
  THROTTLED: "THROTTLED",
  NETWORK: "NETWORK",
  TIMEOUT: "TIMEOUT",
  SERVER: "SERVER",
  JOIN_FAILED: "JOIN_FAILED",
});

export const ErrorCategory = Object.freeze({
  JOIN_ERROR: "JOIN_ERROR",
  PUBLISH_ERROR: "PUBLISH_ERROR",
  SUBSCRIBE_ERROR: "SUBSCRIBE_ERROR",
});

/** The one error type of this module. fatal: retrying the same request will not help. */
export class StageError extends Error {
  constructor(code, message, { category = ErrorCategory.JOIN_ERROR, fatal = true, status = 0, serverCode, participantId } = {}) {
    super(message);
    this.name = "StageError";
    this.code = code;
    this.category = category;
    this.fatal = fatal;
    /** HTTP status of the server's answer, 0 when none. */
    this.status = status;
    /** The server's own code: numeric for WHIP (2003...), a name for JOIN_ERROR (TOKEN_EXPIRED...). */
    this.serverCode = serverCode;
    /** The remote participant a subscribe error is about. */
    this.participantId = participantId;
  }
}

// Timings. The events socket ones are the IVS SDK's (docs/DESIGN.md §4.4 "Timing"), which the server's idle
// timeout (three missed PINGs) is made for.
const PING_INTERVAL_MS = 15000;
const PONG_TIMEOUT_MS = 30000;
const JOIN_TIMEOUT_MS = 12000;
const CONNECT_TIMEOUT_MS = 10000; // a peer connection must reach "connected" in this time
const GATHER_TIMEOUT_MS = 1000;
const RECONNECT_DELAYS_MS = [1000, 2000, 4000, 8000, 16000];
const PUBLISH_RETRY_DELAYS_MS = [2000, 4000, 8000];
const SUBSCRIBE_RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 16000];
const DELETE_TIMEOUT_MS = 3000;

// ---------------------------------------------------------------------------------------------------------
// Tokens

function base64urlDecode(s) {
  let b = s.replace(/-/g, "+").replace(/_/g, "/");
  b += "===".slice((b.length + 3) % 4);
  const bin = atob(b);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new TextDecoder().decode(bytes);
}

/**
 * Reads a participant token's claims without verifying it: the server does that at join, and a client
 * could not (the IVS SDK reads tokens the same way, docs/DESIGN.md §4.4). Throws StageError TOKEN_MALFORMED.
 */
export function decodeToken(token) {
  const bad = (why) => new StageError(ErrorCode.TOKEN_MALFORMED, "not a participant token: " + why);
  if (typeof token !== "string" || token.trim() === "") throw bad("it is empty");
  const parts = token.trim().split(".");
  if (parts.length !== 3) throw bad("a token has three parts separated by dots");
  let c;
  try {
    c = JSON.parse(base64urlDecode(parts[1]));
  } catch {
    throw bad("its payload is not base64url JSON");
  }
  if (!c || typeof c !== "object") throw bad("its payload is not an object");
  for (const k of ["jti", "topic", "whip_url", "events_url"]) {
    if (typeof c[k] !== "string" || c[k] === "") throw bad(`the claim ${k} is missing`);
  }
  if (typeof c.exp !== "number") throw bad("the claim exp is missing");
  if (!/^wss?:\/\//.test(c.events_url) || c.events_url.includes("?")) throw bad("events_url must be a ws:// or wss:// URL without a query");
  if (!/^https?:\/\//.test(c.whip_url)) throw bad("whip_url must be an http:// or https:// URL");
  const caps = c.capabilities && typeof c.capabilities === "object" ? c.capabilities : {};
  return Object.freeze({
    participantId: c.jti,
    userId: typeof c.user_id === "string" ? c.user_id : "",
    stageId: c.topic,
    stageArn: typeof c.resource === "string" ? c.resource : "",
    whipUrl: c.whip_url.replace(/\/+$/, ""),
    eventsUrl: c.events_url,
    attributes: c.attributes && typeof c.attributes === "object" ? { ...c.attributes } : {},
    canPublish: caps.allow_publish === true,
    canSubscribe: caps.allow_subscribe === true,
    expiresAt: new Date(c.exp * 1000),
  });
}

// ---------------------------------------------------------------------------------------------------------
// Streams

/** A local camera or microphone track to publish. */
export class LocalStageStream {
  #muted = false;
  constructor(track) {
    if (typeof MediaStreamTrack === "undefined" || !(track instanceof MediaStreamTrack)) {
      throw new TypeError("LocalStageStream needs a MediaStreamTrack");
    }
    this.mediaStreamTrack = track;
    this.streamType = track.kind === "video" ? StreamType.VIDEO : StreamType.AUDIO;
    this.isLocal = true;
    /** @internal the RTCRtpSender while published */
    this._sender = null;
    /** @internal the stage publishing it, told of mute changes */
    this._onMute = null;
  }
  get isMuted() {
    return this.#muted;
  }
  /** Mutes (sends silence or black frames, and tells the others through SET_STATE). */
  setMuted(muted) {
    muted = !!muted;
    if (muted === this.#muted) return;
    this.#muted = muted;
    this.mediaStreamTrack.enabled = !muted;
    if (this._onMute) this._onMute(this);
  }
  /** The sender's RTCStatsReport while published, else undefined. */
  async requestRTCStats() {
    return this._sender ? this._sender.getStats() : undefined;
  }
}

/** A remote participant's audio or video track. */
export class RemoteStageStream {
  constructor(track, receiver, participantId, muted) {
    this.mediaStreamTrack = track;
    this.streamType = track.kind === "video" ? StreamType.VIDEO : StreamType.AUDIO;
    this.participantId = participantId;
    this.isLocal = false;
    /** What the publisher said of this stream (SET_STATE): audio muted, or video stopped. */
    this.isMuted = !!muted;
    this._receiver = receiver;
  }
  /** The receiver's RTCStatsReport (inbound-rtp, codec, ...). */
  async requestRTCStats() {
    return this._receiver.getStats();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Events

class Emitter {
  #handlers = new Map();
  on(name, fn) {
    if (!this.#handlers.has(name)) this.#handlers.set(name, new Set());
    this.#handlers.get(name).add(fn);
    return this;
  }
  off(name, fn) {
    this.#handlers.get(name)?.delete(fn);
    return this;
  }
  /** @internal A throwing handler must not break the client's own bookkeeping. */
  emit(name, ...args) {
    for (const fn of [...(this.#handlers.get(name) ?? [])]) {
      try {
        fn(...args);
      } catch (e) {
        console.error(`openstage: a ${name} handler threw`, e);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function randomHex(n) {
  const b = new Uint8Array(Math.ceil(n / 2));
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("").slice(0, n);
}

// An X-Ray-shaped trace id, as the IVS SDK puts in the events URL (docs/DESIGN.md §4.4): the server ignores it but
// logs and proxies may use it to tell connection attempts apart.
function traceId() {
  return `1-${Math.floor(Date.now() / 1000).toString(16)}-${randomHex(24)}`;
}

function participantInfo(p, isLocal) {
  return Object.freeze({
    id: p.id,
    userId: p.userId ?? "",
    attributes: Object.freeze({ ...(p.attributes ?? {}) }),
    isLocal,
    isPublishing: !!p.isPublishing,
    audioMuted: !!p.audioMuted,
    videoStopped: !!p.videoStopped,
  });
}

function sameInfo(a, b) {
  if (a.userId !== b.userId || a.isPublishing !== b.isPublishing || a.audioMuted !== b.audioMuted || a.videoStopped !== b.videoStopped) {
    return false;
  }
  const ka = Object.keys(a.attributes), kb = Object.keys(b.attributes);
  return ka.length === kb.length && ka.every((k) => a.attributes[k] === b.attributes[k]);
}

// Resolves once ICE gathering is complete, or after ms. openstage answers with all of its candidates and
// the IVS protocol has no trickle (docs/DESIGN.md §4.4 "Offers"), so the offer should carry ours; the cap keeps a
// slow interface from delaying the join, and the server still learns our address from the ICE checks
// (peer-reflexive).
function gathered(pc, ms) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => pc.iceGatheringState === "complete" && done();
    const timer = setTimeout(done, ms);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

// Resolves when pc is connected; rejects when it fails, closes or takes longer than ms.
function connected(pc, ms) {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (pc.connectionState === "connected") finish();
      else if (pc.connectionState === "failed" || pc.connectionState === "closed") finish(new Error("the peer connection " + pc.connectionState));
    };
    const finish = (err) => {
      clearTimeout(timer);
      pc.removeEventListener("connectionstatechange", check);
      err ? reject(err) : resolve();
    };
    const timer = setTimeout(() => finish(new Error("the peer connection did not connect within " + ms / 1000 + " s")), ms);
    pc.addEventListener("connectionstatechange", check);
    check();
  });
}

function fmtp(line) {
  const out = {};
  for (const kv of (line ?? "").split(";")) {
    const [k, v] = kv.split("=");
    if (k && k.trim()) out[k.trim().toLowerCase()] = (v ?? "").trim().toLowerCase();
  }
  return out;
}

// videoCodecRank orders a video codec for publishing: H.264 constrained baseline (42e01f) in packetization
// mode 1 first, which is what IVS accepts (its media policy, docs/DESIGN.md §4.8: H.264 constrained baseline or
// baseline) and what every IVS subscriber can decode; then other baseline H.264; the retransmission and
// FEC entries next, as they only matter with a media codec; everything else last.
function videoCodecRank(c) {
  const mime = c.mimeType.toLowerCase();
  if (mime === "video/h264") {
    const p = fmtp(c.sdpFmtpLine);
    const mode1 = p["packetization-mode"] === "1";
    const profile = (p["profile-level-id"] ?? "").slice(0, 4);
    if (mode1 && profile === "42e0") return 0;
    if (mode1 && profile === "4200") return 1;
    if (profile === "42e0" || profile === "4200") return 2;
    return 4;
  }
  if (mime === "video/rtx" || mime === "video/red" || mime === "video/ulpfec" || mime === "video/flexfec-03") return 3;
  return 5;
}

/** Puts H.264 constrained baseline first in a video transceiver's codec preferences. Returns whether
 * preferences could be set (browsers without setCodecPreferences keep their default order). */
export function preferH264(transceiver) {
  if (typeof transceiver.setCodecPreferences !== "function" || typeof RTCRtpReceiver?.getCapabilities !== "function") return false;
  // Receiver capabilities: every browser accepts them in setCodecPreferences, including those that check
  // preferences against what they can receive rather than send.
  const codecs = RTCRtpReceiver.getCapabilities("video")?.codecs ?? [];
  if (!codecs.some((c) => videoCodecRank(c) <= 1)) return false;
  const ranked = codecs.map((c, i) => [videoCodecRank(c), i, c]).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((x) => x[2]);
  try {
    transceiver.setCodecPreferences(ranked);
    return true;
  } catch (e) {
    console.warn("openstage: could not set codec preferences", e);
    return false;
  }
}

// Maps a WHIP error answer to a StageError. The numeric codes are IVS's (docs/DESIGN.md §4.5); openstage
// sends 2003 both for an invalid token (401) and for a missing capability (403), hence the status.
function httpError(category, status, body, participantId) {
  const code = typeof body?.code === "number" ? body.code : undefined;
  const detail = typeof body?.message === "string" && body.message ? body.message : `HTTP ${status}`;
  const opts = { category, status, serverCode: code, participantId };
  if (code === 2002) return new StageError(ErrorCode.TOKEN_EXPIRED, "the participant token has expired", opts);
  if (code === 2003 && status === 401) return new StageError(ErrorCode.TOKEN_INVALID, detail, opts);
  if (code === 2003) return new StageError(ErrorCode.NO_CAPABILITY, detail, opts);
  if (code === 2005) return new StageError(ErrorCode.STAGE_FULL, detail, opts);
  if (code === 2014) return new StageError(ErrorCode.CODEC_MISMATCH, detail, opts);
  if (code === 2004 || status === 404) return new StageError(ErrorCode.PUBLISHER_NOT_FOUND, detail, opts);
  if (status === 401) return new StageError(ErrorCode.TOKEN_INVALID, detail, opts);
  if (status === 429) return new StageError(ErrorCode.THROTTLED, detail, { ...opts, fatal: false });
  if (status >= 500) return new StageError(ErrorCode.SERVER, detail, { ...opts, fatal: false });
  return new StageError(ErrorCode.SERVER, detail, opts);
}

// Maps aws:ivs:JOIN_ERROR codes (docs/DESIGN.md §4.4) to StageErrors. INTERNAL is the one the server means as
// retryable.
function joinError(payload) {
  const code = String(payload?.code ?? "");
  const msg = typeof payload?.message === "string" && payload.message ? payload.message : code || "the server refused the join";
  const opts = { category: ErrorCategory.JOIN_ERROR, serverCode: code };
  switch (code) {
    case "TOKEN_EXPIRED":
      return new StageError(ErrorCode.TOKEN_EXPIRED, msg, opts);
    case "TOKEN_INVALID":
    case "TOKEN_INVALID_SIGNATURE":
    case "TOKEN_MISSING":
    case "BAD_REQUEST":
      return new StageError(ErrorCode.TOKEN_INVALID, msg, opts);
    case "STAGE_DELETED":
      return new StageError(ErrorCode.STAGE_DELETED, msg, opts);
    case "PARTICIPANT_DISCONNECTED":
      return new StageError(ErrorCode.PARTICIPANT_DISCONNECTED, msg, opts);
    case "STAGE_AT_CAPACITY":
    case "QUOTA_EXCEEDED":
      return new StageError(ErrorCode.STAGE_FULL, msg, opts);
    case "INTERNAL":
      return new StageError(ErrorCode.SERVER, msg, { ...opts, fatal: false });
    default:
      return new StageError(ErrorCode.JOIN_FAILED, msg, opts);
  }
}

const disconnectReasons = {
  PARTICIPANT_DISCONNECTED: LeaveReason.PARTICIPANT_DISCONNECTED,
  STAGE_DELETED: LeaveReason.STAGE_DELETED,
  TOKEN_REUSED: LeaveReason.TOKEN_REUSED,
  SERVER_SHUTDOWN: LeaveReason.SERVER_SHUTDOWN,
};

const defaultStrategy = Object.freeze({
  stageStreamsToPublish: () => [],
  shouldPublishParticipant: () => false,
  shouldSubscribeToParticipant: () => SubscribeType.AUDIO_VIDEO,
});

// ---------------------------------------------------------------------------------------------------------
// Stage

/**
 * A stage, joined with one participant token.
 *
 *   const stage = new Stage(token, {
 *     stageStreamsToPublish: () => [new LocalStageStream(videoTrack), new LocalStageStream(audioTrack)],
 *     shouldPublishParticipant: (participant) => true,
 *     shouldSubscribeToParticipant: (participant) => SubscribeType.AUDIO_VIDEO,
 *   });
 *   stage.on(StageEvents.STAGE_PARTICIPANT_STREAMS_ADDED, (participant, streams) => ...);
 *   await stage.join();
 *   ...
 *   await stage.leave();
 *
 * The strategy is asked again on every stage state and on refreshStrategy().
 */
export class Stage extends Emitter {
  #token;
  #claims;
  #strategy;
  #state = ConnectionState.DISCONNECTED;
  #ws = null;
  #seq = 0; // last STAGE_STATE sequenceNumber on the current socket
  #countSeq = 0; // last aws:ivs:SUBSCRIBER_COUNT sequenceNumber on the current socket
  #pingTimer = null;
  #pongDue = 0; // when the PONG to an unanswered PING is overdue, 0 if none is
  #reconnects = 0;
  #reconnectTimer = null;
  #joining = null; // {resolve, reject, timer} while join() is pending
  #active = false; // between join() and leave or a fatal error
  #remotes = new Map(); // id -> {info, sub}
  #pub = null; // {pc, location, streams, state, ...}
  #publishWanted = false;
  #publishAttempt = 0;
  #publishGaveUp = false; // a refused publish is not retried on every stage state, only on refreshStrategy
  #publishTimer = null;
  #sessionId = crypto.randomUUID?.() ?? randomHex(32);

  /** @param {string} token a participant token  @param {object} [strategy] */
  constructor(token, strategy) {
    super();
    this.#claims = decodeToken(token);
    this.#token = token.trim();
    this.#strategy = { ...defaultStrategy, ...(strategy ?? {}) };
    this.localParticipant = participantInfo(
      { id: this.#claims.participantId, userId: this.#claims.userId, attributes: this.#claims.attributes },
      true,
    );
  }

  /** The token's claims (participantId, userId, stageId, whipUrl, eventsUrl, canPublish, canSubscribe, expiresAt). */
  get claims() {
    return this.#claims;
  }
  get connectionState() {
    return this.#state;
  }
  /** The remote participants now in the stage. */
  get participants() {
    return [...this.#remotes.values()].map((r) => r.info);
  }
  /** The local participant's publish state. */
  get publishState() {
    return this.#pub?.state ?? PublishState.NOT_PUBLISHED;
  }

  /**
   * Joins the stage: resolves once the server has told who is in it, rejects with a StageError when the
   * token is refused (expired, invalid, stage deleted or full, participant disconnected).
   */
  join() {
    if (this.#active) return Promise.reject(new Error("the stage is already joined or joining"));
    if (this.#claims.expiresAt.getTime() <= Date.now()) {
      return Promise.reject(
        new StageError(ErrorCode.TOKEN_EXPIRED, `the participant token expired at ${this.#claims.expiresAt.toISOString()}`),
      );
    }
    this.#active = true;
    this.#reconnects = 0;
    this.#publishWanted = false;
    this.#publishGaveUp = false;
    this.#publishAttempt = 0;
    this.#setState(ConnectionState.CONNECTING);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#fail(new StageError(ErrorCode.TIMEOUT, "the server did not answer the join in time", { fatal: false }));
      }, JOIN_TIMEOUT_MS);
      this.#joining = { resolve, reject, timer };
      this.#connect();
    });
  }

  /** Leaves the stage: closes the events socket, stops publishing and subscriptions (with DELETE). */
  async leave() {
    await this.#teardown(LeaveReason.USER_INITIATED);
  }

  /** Asks the strategy again (after the app changed what it publishes or whom it subscribes to). */
  refreshStrategy() {
    if (this.#state !== ConnectionState.CONNECTED) return;
    // Asking again is the app's way to retry what failed for good.
    this.#publishGaveUp = false;
    for (const r of this.#remotes.values()) r.gaveUp = false;
    this.#reconcilePublish();
    this.#reconcileSubscriptions();
  }

  /** Replaces the strategy and applies it. */
  replaceStrategy(strategy) {
    this.#strategy = { ...defaultStrategy, ...(strategy ?? {}) };
    this.refreshStrategy();
  }

  // ----- events socket

  #connect() {
    const c = this.#claims;
    const url = `${c.eventsUrl}?error_over_ws=1&topic=${encodeURIComponent(c.stageId)}/publishers&traceid=${traceId()}`;
    let ws;
    try {
      // The token is the one subprotocol: browsers cannot set headers on a WebSocket (docs/DESIGN.md §4.4).
      ws = new WebSocket(url, [this.#token]);
    } catch (e) {
      this.#fail(new StageError(ErrorCode.NETWORK, "cannot open the events socket: " + e.message));
      return;
    }
    this.#ws = ws;
    this.#seq = 0; // sequence numbers start again on every socket
    this.#countSeq = 0;
    this.#pongDue = 0;
    ws.onopen = () => {
      if (this.#ws !== ws) return;
      clearInterval(this.#pingTimer);
      this.#pingTimer = setInterval(() => this.#ping(ws), PING_INTERVAL_MS);
    };
    ws.onmessage = (e) => this.#ws === ws && this.#onMessage(e.data);
    ws.onclose = (e) => this.#ws === ws && this.#onSocketClosed(e);
  }

  #send(msg) {
    if (this.#ws?.readyState === WebSocket.OPEN) this.#ws.send(JSON.stringify(msg));
  }

  #ping(ws) {
    if (this.#pongDue && Date.now() > this.#pongDue) {
      // No PONG for 30 s: the connection is dead even if the browser has not noticed.
      ws.close(4000, "pong timeout");
      this.#onSocketClosed({ code: 4000, reason: "pong timeout" });
      return;
    }
    if (!this.#pongDue) this.#pongDue = Date.now() + PONG_TIMEOUT_MS;
    this.#send({ type: "PING" });
  }

  #onMessage(data) {
    let m;
    try {
      m = JSON.parse(data);
    } catch {
      return;
    }
    switch (m?.type) {
      case "STAGE_STATE":
      case "aws:ivs:STAGE_STATE": {
        const n = m.payload?.sequenceNumber;
        // Only a newer state counts: states may be coalesced, never reordered (docs/DESIGN.md §4.4).
        if (typeof n !== "number" || n <= this.#seq) return;
        this.#seq = n;
        this.#applyState(m.payload);
        return;
      }
      case "aws:ivs:SUBSCRIBER_COUNT": {
        const n = m.payload?.sequenceNumber;
        if (typeof n !== "number" || n <= this.#countSeq) return;
        this.#countSeq = n;
        this.emit(StageEvents.STAGE_SUBSCRIBER_COUNT_CHANGED, Number(m.payload?.count) || 0);
        return;
      }
      case "PONG":
        this.#pongDue = 0;
        return;
      case "aws:ivs:JOIN_ERROR": {
        const err = joinError(m.payload);
        this.#dropSocket();
        if (err.fatal) this.#fail(err);
        else this.#scheduleReconnect(err);
        return;
      }
      case "aws:ivs:DISCONNECT": {
        const code = String(m.payload?.code ?? "");
        const reason = disconnectReasons[code] ?? LeaveReason.CONNECTION_LOST;
        const err =
          code === "PARTICIPANT_DISCONNECTED"
            ? new StageError(ErrorCode.PARTICIPANT_DISCONNECTED, m.payload?.reason || "disconnected by the server")
            : code === "STAGE_DELETED"
              ? new StageError(ErrorCode.STAGE_DELETED, m.payload?.reason || "the stage was deleted")
              : undefined;
        this.#teardown(reason, err);
        return;
      }
      default:
        return; // unknown types are ignored, as the protocol expects of clients
    }
  }

  #onSocketClosed(e) {
    this.#dropSocket();
    if (!this.#active) return;
    this.#scheduleReconnect(new StageError(ErrorCode.NETWORK, `the events socket closed (${e.code}${e.reason ? " " + e.reason : ""})`, { fatal: false }));
  }

  #dropSocket() {
    clearInterval(this.#pingTimer);
    this.#pingTimer = null;
    const ws = this.#ws;
    this.#ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000);
  }

  // A socket that closes without aws:ivs:DISCONNECT is a network failure: reconnect with the same token, as
  // the server keeps the participant for its reconnect window. A first connection that fails is reported
  // at once instead: that is a wrong URL or a server that is down, which waiting will not fix.
  #scheduleReconnect(err) {
    if (!this.#active) return;
    if (this.#joining && this.#reconnects === 0 && err.code === ErrorCode.NETWORK) {
      this.#fail(new StageError(ErrorCode.NETWORK, `cannot reach the stage's events socket at ${this.#claims.eventsUrl}`));
      return;
    }
    if (this.#reconnects >= RECONNECT_DELAYS_MS.length) {
      this.#fail(new StageError(ErrorCode.NETWORK, "lost the connection to the stage: " + err.message));
      return;
    }
    if (!this.#joining) this.#setState(ConnectionState.CONNECTING);
    const delay = RECONNECT_DELAYS_MS[this.#reconnects++];
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = setTimeout(() => this.#active && this.#connect(), delay);
  }

  #applyState(payload) {
    this.#reconnects = 0;
    const seen = new Map();
    for (const p of Array.isArray(payload?.participants) ? payload.participants : []) {
      if (p && typeof p.id === "string" && p.id !== this.#claims.participantId) seen.set(p.id, participantInfo(p, false));
    }
    for (const [id, r] of [...this.#remotes]) {
      if (!seen.has(id)) this.#removeRemote(id, r);
    }
    for (const [id, info] of seen) {
      const r = this.#remotes.get(id);
      if (!r) {
        this.#remotes.set(id, { info, sub: null });
        this.emit(StageEvents.STAGE_PARTICIPANT_JOINED, info);
      } else if (!sameInfo(r.info, info)) {
        const before = r.info;
        r.info = info;
        this.emit(StageEvents.STAGE_PARTICIPANT_UPDATED, info);
        if (r.sub) this.#remoteMuteChanged(r, before, info);
      }
    }
    if (this.#joining) {
      const j = this.#joining;
      this.#joining = null;
      clearTimeout(j.timer);
      this.#setState(ConnectionState.CONNECTED);
      j.resolve();
    } else if (this.#state !== ConnectionState.CONNECTED) {
      this.#setState(ConnectionState.CONNECTED);
      this.#sendMediaState(); // the new socket does not know our mute state
    }
    this.#reconcilePublish();
    this.#reconcileSubscriptions();
  }

  #remoteMuteChanged(r, before, info) {
    for (const s of r.sub.streams) {
      const muted = s.streamType === StreamType.AUDIO ? info.audioMuted : info.videoStopped;
      const was = s.streamType === StreamType.AUDIO ? before.audioMuted : before.videoStopped;
      if (muted !== was) {
        s.isMuted = muted;
        this.emit(StageEvents.STAGE_STREAM_MUTE_CHANGED, info, s);
      }
    }
  }

  #removeRemote(id, r) {
    this.#remotes.delete(id);
    if (r.sub) this.#unsubscribe(r);
    this.emit(StageEvents.STAGE_PARTICIPANT_LEFT, r.info);
  }

  #setState(s) {
    if (s === this.#state) return;
    this.#state = s;
    this.emit(StageEvents.STAGE_CONNECTION_STATE_CHANGED, s);
  }

  // A fatal error: reject a pending join, or leave the stage and report it.
  #fail(err) {
    if (this.#joining) {
      const j = this.#joining;
      this.#joining = null;
      clearTimeout(j.timer);
      this.#teardown(LeaveReason.JOIN_FAILED, err, true);
      j.reject(err);
      return;
    }
    this.emit(StageEvents.ERROR, err);
    this.#teardown(LeaveReason.CONNECTION_LOST, err);
  }

  async #teardown(reason, err, quiet = false) {
    if (!this.#active) return;
    this.#active = false;
    if (this.#joining) {
      const j = this.#joining;
      this.#joining = null;
      clearTimeout(j.timer);
      j.reject(err ?? new StageError(ErrorCode.JOIN_FAILED, "left before the join completed"));
    }
    clearTimeout(this.#reconnectTimer);
    clearTimeout(this.#publishTimer);
    // The socket first, then the media (the order the IVS SDK uses): the server counts the participant as
    // gone once its last connection is.
    this.#dropSocket();
    const deletes = [];
    for (const [id, r] of [...this.#remotes]) {
      if (r.sub) deletes.push(this.#unsubscribe(r));
      this.#remotes.delete(id);
      this.emit(StageEvents.STAGE_PARTICIPANT_LEFT, r.info);
    }
    if (this.#pub) deletes.push(this.#unpublish());
    this.#setState(err ? ConnectionState.ERRORED : ConnectionState.DISCONNECTED);
    // A failed join() reports through its rejection; everything else through STAGE_LEFT.
    if (!quiet) this.emit(StageEvents.STAGE_LEFT, reason, err);
    await Promise.allSettled(deletes);
  }

  // ----- HTTP (WHIP)

  #headers(extra) {
    return {
      Authorization: "Bearer " + this.#token,
      "X-Stages-SDK": SDK_VERSION,
      "X-Stages-Platform": "web",
      "X-Stages-Session-ID": this.#sessionId,
      ...extra,
    };
  }

  async #postOffer(url, sdp, category, participantId) {
    let res;
    try {
      res = await fetch(url, {
        method: "POST",
        headers: this.#headers({ "Content-Type": "application/sdp" }),
        body: sdp,
        cache: "no-store",
      });
    } catch (e) {
      throw new StageError(ErrorCode.NETWORK, `cannot reach ${url}: ${e.message}`, { category, fatal: false, participantId });
    }
    const text = await res.text();
    if (!res.ok) {
      let body;
      try {
        body = JSON.parse(text);
      } catch {
        body = { message: text.slice(0, 200) };
      }
      throw httpError(category, res.status, body, participantId);
    }
    const loc = res.headers.get("Location");
    // Location may be absolute or an absolute path; either resolves against the URL we posted to.
    return { answer: text, location: loc ? new URL(loc, res.url || url).href : null };
  }

  #delete(location) {
    if (!location) return Promise.resolve();
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), DELETE_TIMEOUT_MS);
    // keepalive: a DELETE sent as the page unloads still reaches the server.
    return fetch(location, { method: "DELETE", headers: this.#headers(), keepalive: true, signal: ctl.signal })
      .catch(() => {}) // the server also notices the closed peer connection
      .finally(() => clearTimeout(timer));
  }

  // ----- publishing

  #wantedStreams() {
    const list = this.#strategy.shouldPublishParticipant(this.localParticipant) ? this.#strategy.stageStreamsToPublish() ?? [] : [];
    return list.filter((s) => s instanceof LocalStageStream);
  }

  #reconcilePublish() {
    if (!this.#active) return;
    const streams = this.#wantedStreams();
    const want = streams.length > 0;
    if (!want) {
      this.#publishWanted = false;
      this.#publishGaveUp = false;
      this.#publishAttempt = 0;
      clearTimeout(this.#publishTimer);
      if (this.#pub) this.#unpublish();
      return;
    }
    if (this.#pub) {
      this.#replaceTracks(streams);
      return;
    }
    if (this.#publishWanted || this.#publishGaveUp) return; // an attempt is under way or scheduled, or refused
    this.#publishWanted = true;
    this.#publish(streams);
  }

  #setPublishState(state) {
    if (!this.#pub || this.#pub.state === state) return;
    this.#pub.state = state;
    this.emit(StageEvents.STAGE_PARTICIPANT_PUBLISH_STATE_CHANGED, this.localParticipant, state);
  }

  async #publish(streams) {
    const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
    const pub = { pc, location: null, streams: [], state: null, audio: null, video: null, closed: false };
    this.#pub = pub;
    this.#setPublishState(PublishState.ATTEMPTING_PUBLISH);
    try {
      // Audio in mid 0 and video in mid 1, both always present (docs/DESIGN.md §4.4 "Offers"): openstage's ivs
      // media policy wants H.264 and Opus offered even by audio-only publishers.
      pub.audio = pc.addTransceiver("audio", { direction: "sendonly" });
      pub.video = pc.addTransceiver("video", { direction: "sendonly" });
      preferH264(pub.video);
      await this.#replaceTracks(streams);
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc, GATHER_TIMEOUT_MS);
      const url = `${this.#claims.whipUrl}/publish/${encodeURIComponent(this.#claims.participantId)}`;
      const { answer, location } = await this.#postOffer(url, pc.localDescription.sdp, ErrorCategory.PUBLISH_ERROR);
      pub.location = location;
      if (pub.closed) {
        this.#delete(location);
        return;
      }
      await pc.setRemoteDescription({ type: "answer", sdp: answer });
      await connected(pc, CONNECT_TIMEOUT_MS);
      if (pub.closed) return;
      this.#publishAttempt = 0;
      this.#setPublishState(PublishState.PUBLISHED);
      this.#sendMediaState();
      pc.addEventListener("connectionstatechange", () => {
        if (!pub.closed && (pc.connectionState === "failed" || pc.connectionState === "closed")) {
          this.#publishFailed(pub, new StageError(ErrorCode.NETWORK, "the publish connection was lost", { category: ErrorCategory.PUBLISH_ERROR, fatal: false }));
        }
      });
    } catch (e) {
      if (pub.closed) return;
      const err = e instanceof StageError ? e : new StageError(ErrorCode.NETWORK, e.message, { category: ErrorCategory.PUBLISH_ERROR, fatal: false });
      this.#publishFailed(pub, err);
    }
  }

  // A failed publish is retried a few times unless the server said no for good (no capability, stage full,
  // codec refused...). Only giving up is an ERROR: the publish state tells of the attempts.
  #publishFailed(pub, err) {
    this.#setPublishState(PublishState.ERRORED);
    this.#closePublish(pub);
    if (err.fatal || this.#publishAttempt >= PUBLISH_RETRY_DELAYS_MS.length || !this.#active) {
      if (this.#active) this.emit(StageEvents.ERROR, err);
      this.#publishWanted = false;
      this.#publishGaveUp = true; // until refreshStrategy asks again
      this.#publishAttempt = 0;
      return;
    }
    const delay = PUBLISH_RETRY_DELAYS_MS[this.#publishAttempt++];
    clearTimeout(this.#publishTimer);
    this.#publishTimer = setTimeout(() => {
      this.#publishWanted = false;
      this.#reconcilePublish();
    }, delay);
  }

  #closePublish(pub) {
    pub.closed = true;
    for (const s of pub.streams) {
      s._sender = null;
      s._onMute = null;
    }
    pub.pc.close();
    if (this.#pub === pub) this.#pub = null;
    return this.#delete(pub.location);
  }

  #unpublish() {
    const pub = this.#pub;
    this.#publishWanted = false;
    this.#setPublishState(PublishState.NOT_PUBLISHED);
    return this.#closePublish(pub);
  }

  // Puts the wanted tracks on the publish senders (replaceTrack needs no renegotiation).
  async #replaceTracks(streams) {
    const pub = this.#pub;
    const audio = streams.find((s) => s.streamType === StreamType.AUDIO) ?? null;
    const video = streams.find((s) => s.streamType === StreamType.VIDEO) ?? null;
    for (const s of pub.streams) {
      if (s !== audio && s !== video) {
        s._sender = null;
        s._onMute = null;
      }
    }
    pub.streams = [audio, video].filter(Boolean);
    for (const s of pub.streams) {
      s._sender = s === audio ? pub.audio.sender : pub.video.sender;
      s._onMute = () => this.#sendMediaState();
    }
    await pub.audio.sender.replaceTrack(audio?.mediaStreamTrack ?? null);
    await pub.video.sender.replaceTrack(video?.mediaStreamTrack ?? null);
    this.#sendMediaState();
  }

  // SET_STATE tells the others our mute state; the server puts it in STAGE_STATE (docs/DESIGN.md §4.4).
  #sendMediaState() {
    const pub = this.#pub;
    if (!pub || pub.state !== PublishState.PUBLISHED) return;
    const audio = pub.streams.find((s) => s.streamType === StreamType.AUDIO);
    const video = pub.streams.find((s) => s.streamType === StreamType.VIDEO);
    this.#send({ type: "SET_STATE", version: "0", audioMuted: !audio || audio.isMuted, videoStopped: !video || video.isMuted });
  }

  // ----- subscribing

  #subscribeType(info) {
    // A token without SUBSCRIBE (a broadcaster that does not watch) subscribes to nobody, silently: the
    // server would refuse each attempt. Publishing, which the app asks for explicitly, is left to the server
    // to refuse, so that the refusal is reported and recorded as the PUBLISH_ERROR event IVS makes.
    if (!this.#claims.canSubscribe) return SubscribeType.NONE;
    const t = this.#strategy.shouldSubscribeToParticipant(info);
    return t === SubscribeType.AUDIO_ONLY || t === SubscribeType.AUDIO_VIDEO ? t : SubscribeType.NONE;
  }

  // Subscribes to every remote participant that publishes and that the strategy wants, and drops the
  // subscriptions of those that stopped (docs/DESIGN.md §4.4: subscribe only while isPublishing).
  #reconcileSubscriptions() {
    if (!this.#active) return;
    for (const r of this.#remotes.values()) {
      const type = r.info.isPublishing ? this.#subscribeType(r.info) : SubscribeType.NONE;
      if (r.sub && (type === SubscribeType.NONE || r.sub.type !== type)) this.#unsubscribe(r);
      if (!r.sub && type !== SubscribeType.NONE && !r.retryTimer && !r.gaveUp) this.#subscribe(r, type);
      if (!r.info.isPublishing) {
        r.gaveUp = false; // a new publish deserves new attempts
        r.attempt = 0;
      }
    }
  }

  #setSubscribeState(r, state) {
    if (!r.sub || r.sub.state === state) return;
    r.sub.state = state;
    this.emit(StageEvents.STAGE_PARTICIPANT_SUBSCRIBE_STATE_CHANGED, r.info, state);
  }

  async #subscribe(r, type) {
    const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
    const sub = { pc, type, location: null, streams: [], state: null, closed: false };
    r.sub = sub;
    this.#setSubscribeState(r, SubscribeState.ATTEMPTING_SUBSCRIBE);
    const id = r.info.id;
    try {
      pc.addTransceiver("audio", { direction: "recvonly" });
      if (type === SubscribeType.AUDIO_VIDEO) pc.addTransceiver("video", { direction: "recvonly" });
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc, GATHER_TIMEOUT_MS);
      const url = `${this.#claims.whipUrl}/subscribe/${encodeURIComponent(id)}`;
      const { answer, location } = await this.#postOffer(url, pc.localDescription.sdp, ErrorCategory.SUBSCRIBE_ERROR, id);
      sub.location = location;
      if (sub.closed) {
        this.#delete(location);
        return;
      }
      await pc.setRemoteDescription({ type: "answer", sdp: answer });
      // The tracks exist once the answer is applied; media follows when the connection is up.
      for (const t of pc.getTransceivers()) {
        if (t.currentDirection === "recvonly" || t.currentDirection === "sendrecv") {
          const muted = t.receiver.track.kind === "audio" ? r.info.audioMuted : r.info.videoStopped;
          sub.streams.push(new RemoteStageStream(t.receiver.track, t.receiver, id, muted));
        }
      }
      if (sub.streams.length) this.emit(StageEvents.STAGE_PARTICIPANT_STREAMS_ADDED, r.info, [...sub.streams]);
      await connected(pc, CONNECT_TIMEOUT_MS);
      if (sub.closed) return;
      r.attempt = 0;
      this.#setSubscribeState(r, SubscribeState.SUBSCRIBED);
      pc.addEventListener("connectionstatechange", () => {
        if (!sub.closed && (pc.connectionState === "failed" || pc.connectionState === "closed")) {
          this.#subscribeFailed(r, sub, new StageError(ErrorCode.NETWORK, "the subscription was lost", { category: ErrorCategory.SUBSCRIBE_ERROR, fatal: false, participantId: id }));
        }
      });
    } catch (e) {
      if (sub.closed) return;
      const err = e instanceof StageError ? e : new StageError(ErrorCode.NETWORK, e.message, { category: ErrorCategory.SUBSCRIBE_ERROR, fatal: false, participantId: id });
      this.#subscribeFailed(r, sub, err);
    }
  }

  // A failed subscription is retried while the participant still publishes. A subscription also ends when
  // its publisher stops (the server closes it), and PUBLISHER_NOT_FOUND is the race of a publisher that
  // just stopped: the next stage state tells which, and the retry, scheduled meanwhile, happens only if the
  // publisher is still there. Only giving up is an ERROR.
  #subscribeFailed(r, sub, err) {
    this.#setSubscribeState(r, SubscribeState.ERRORED);
    this.#closeSubscription(r, sub);
    const retry = (!err.fatal || err.code === ErrorCode.PUBLISHER_NOT_FOUND) && (r.attempt ?? 0) < SUBSCRIBE_RETRY_DELAYS_MS.length;
    if (!retry || !this.#active) {
      r.gaveUp = true;
      if (this.#active && this.#remotes.get(r.info.id) === r && r.info.isPublishing) this.emit(StageEvents.ERROR, err);
      return;
    }
    const delay = SUBSCRIBE_RETRY_DELAYS_MS[r.attempt ?? 0];
    r.attempt = (r.attempt ?? 0) + 1;
    r.retryTimer = setTimeout(() => {
      r.retryTimer = null;
      if (this.#remotes.get(r.info.id) === r) this.#reconcileSubscriptions();
    }, delay);
  }

  #closeSubscription(r, sub) {
    sub.closed = true;
    sub.pc.close();
    if (r.sub === sub) r.sub = null;
    if (sub.streams.length) this.emit(StageEvents.STAGE_PARTICIPANT_STREAMS_REMOVED, r.info, sub.streams);
    return this.#delete(sub.location);
  }

  #unsubscribe(r) {
    clearTimeout(r.retryTimer);
    r.retryTimer = null;
    const sub = r.sub;
    this.#setSubscribeState(r, SubscribeState.NOT_SUBSCRIBED);
    return this.#closeSubscription(r, sub);
  }
}
