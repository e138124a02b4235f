// The join page: a participant token in, the stage out. It uses only the public API of the client module,
// as an app would.
import {
  Stage,
  StageEvents,
  SubscribeType,
  LocalStageStream,
  ConnectionState,
  PublishState,
  SubscribeState,
  ErrorCode,
  ErrorCategory,
  LeaveReason,
  StreamType,
  decodeToken,
  SDK_VERSION,
} from "./sdk/openstage-stage.js";

const $ = (id) => document.getElementById(id);

let stage = null;
let media = null; // the camera and microphone MediaStream while we publish
let localStreams = []; // LocalStageStream[] of media
let publishing = false; // what the user asked for
const tiles = new Map(); // participant id -> tile
let subscriberCount = 0; // subscribe-only participants connected, as the server last counted them

// ---------------------------------------------------------------------------------------------------------
// Messages

function showError(text) {
  const e = $("error");
  e.textContent = text;
  e.hidden = !text;
}

function setStatus(text) {
  $("status").textContent = text;
}

// describeError says what went wrong and what to do, for the errors a person can act on.
function describeError(err) {
  const publish = err.category === ErrorCategory.PUBLISH_ERROR;
  switch (err.code) {
    case ErrorCode.TOKEN_MALFORMED:
      return "That is not a participant token (" + err.message.replace(/^not a participant token: /, "") + ").";
    case ErrorCode.TOKEN_EXPIRED:
      return "This token has expired. Ask for a new one (aws ivs-realtime create-participant-token).";
    case ErrorCode.TOKEN_INVALID:
      return "The server does not accept this token: " + err.message;
    case ErrorCode.NO_CAPABILITY:
      return publish
        ? "This token may not publish: it was made without the PUBLISH capability. You can still watch and listen."
        : "This token may not subscribe: it was made without the SUBSCRIBE capability.";
    case ErrorCode.STAGE_FULL:
      return publish
        ? "The stage is full: it already has as many publishers as it allows. You can still watch and listen."
        : "The stage is full: it already has as many participants as it allows. Try again later.";
    case ErrorCode.STAGE_DELETED:
      return "This stage no longer exists.";
    case ErrorCode.PARTICIPANT_DISCONNECTED:
      return "This participant was removed from the stage and cannot join again with this token.";
    case ErrorCode.CODEC_MISMATCH:
      return "The server refused this browser's media (it wants H.264 video and Opus audio): " + err.message;
    case ErrorCode.PUBLISHER_NOT_FOUND:
      return "Could not watch a participant who stopped publishing.";
    case ErrorCode.NETWORK:
    case ErrorCode.TIMEOUT:
      return "Cannot reach the server: " + err.message;
    default:
      return err.message || String(err);
  }
}

function leaveText(reason, err) {
  switch (reason) {
    case LeaveReason.TOKEN_REUSED:
      return "This token joined the stage from another tab or device, so this page left it.";
    case LeaveReason.PARTICIPANT_DISCONNECTED:
      return "You were disconnected from the stage.";
    case LeaveReason.STAGE_DELETED:
      return "The stage was deleted.";
    case LeaveReason.SERVER_SHUTDOWN:
      return "The server shut down.";
    default:
      return err ? describeError(err) : "Left the stage.";
  }
}

function mediaErrorText(e) {
  if (!navigator.mediaDevices?.getUserMedia) {
    return "This page cannot use the camera here: browsers allow it only on https:// pages or on localhost.";
  }
  if (e?.name === "NotAllowedError") return "The camera or microphone was not allowed. Allow them for this page to publish.";
  if (e?.name === "NotFoundError") return "No camera or microphone was found.";
  if (e?.name === "NotReadableError") return "The camera or microphone is in use by another application.";
  return "Cannot use the camera or microphone: " + (e?.message || e);
}

// ---------------------------------------------------------------------------------------------------------
// The token

function readToken() {
  const raw = $("token").value.trim();
  if (!raw) return null;
  return decodeToken(raw); // throws StageError TOKEN_MALFORMED
}

let shownToken = null;
function showClaims() {
  const raw = $("token").value.trim();
  if (raw === shownToken) return;
  shownToken = raw;
  showError("");
  $("claims").hidden = true;
  if (!raw) return;
  let c;
  try {
    c = readToken();
  } catch (e) {
    showError(describeError(e));
    return;
  }
  $("c-stage").textContent = c.stageId;
  $("c-participant").textContent = c.participantId;
  $("c-user").textContent = c.userId || "(none)";
  $("c-caps").textContent = [c.canPublish && "publish", c.canSubscribe && "subscribe"].filter(Boolean).join(", ") || "nothing";
  $("c-exp").textContent = c.expiresAt.toLocaleString();
  $("claims").hidden = false;
  $("publish").checked = c.canPublish;
  if (c.expiresAt.getTime() <= Date.now()) showError(describeError({ code: ErrorCode.TOKEN_EXPIRED }));
}

// ---------------------------------------------------------------------------------------------------------
// Local media

async function startMedia() {
  if (media) return;
  if (!navigator.mediaDevices?.getUserMedia) throw new Error("insecure context");
  // At most 720p: IVS's media policy (and openstage's ivs policy) refuses more.
  media = await navigator.mediaDevices.getUserMedia({
    video: { width: { ideal: 1280, max: 1280 }, height: { ideal: 720, max: 720 }, frameRate: { ideal: 30, max: 30 } },
    audio: true,
  });
  localStreams = media.getTracks().map((t) => new LocalStageStream(t));
  $("preview").textContent = "Stop preview";
  $("local").srcObject = media;
  $("local-tile").hidden = false;
  $("mute-mic").disabled = !localStreams.some((s) => s.streamType === StreamType.AUDIO);
  $("stop-cam").disabled = !localStreams.some((s) => s.streamType === StreamType.VIDEO);
  updateMuteButtons();
}

function stopMedia() {
  if (!media) return;
  for (const t of media.getTracks()) t.stop();
  media = null;
  localStreams = [];
  $("local").srcObject = null;
  $("local-tile").hidden = true;
  $("local-state").textContent = "";
  $("preview").textContent = "Preview camera";
}

// The preview shows the camera before (or without) publishing it; publishing uses the same tracks.
async function togglePreview() {
  if (media) {
    if (stage && publishing) {
      // Stopping the camera stops publishing it.
      $("publish").checked = false;
      await publishChanged();
    } else {
      stopMedia();
    }
    return;
  }
  try {
    await startMedia();
    $("preview").textContent = "Stop preview";
  } catch (e) {
    showError(mediaErrorText(e));
  }
}

function updateMuteButtons() {
  const a = localStreams.find((s) => s.streamType === StreamType.AUDIO);
  const v = localStreams.find((s) => s.streamType === StreamType.VIDEO);
  $("mute-mic").textContent = a?.isMuted ? "Unmute mic" : "Mute mic";
  $("stop-cam").textContent = v?.isMuted ? "Start camera" : "Stop camera";
}

function toggleMuted(type) {
  const s = localStreams.find((x) => x.streamType === type);
  if (!s) return;
  s.setMuted(!s.isMuted);
  updateMuteButtons();
}

// ---------------------------------------------------------------------------------------------------------
// Tiles: one per remote participant

function tileFor(info) {
  let t = tiles.get(info.id);
  if (t) return t;
  const el = $("tile-template").content.firstElementChild.cloneNode(true);
  el.dataset.participantId = info.id;
  t = { el, video: el.querySelector("video"), streams: new Set(), info };
  el.querySelector(".unmute").addEventListener("click", () => {
    t.video.muted = false;
    el.querySelector(".unmute").hidden = true;
    t.video.play().catch(() => {});
  });
  tiles.set(info.id, t);
  $("tiles").appendChild(el);
  updateTile(t, info);
  $("empty").hidden = true;
  return t;
}

function updateTile(t, info) {
  t.info = info;
  t.el.querySelector(".name").textContent = info.userId || "(no user id)";
  t.el.querySelector(".id").textContent = info.id;
  t.el.querySelector(".mic").hidden = !(info.isPublishing && info.audioMuted);
  t.el.querySelector(".cam").hidden = !(info.isPublishing && info.videoStopped);
  t.el.classList.toggle("publishing", info.isPublishing);
}

function removeTile(id) {
  const t = tiles.get(id);
  if (!t) return;
  t.video.srcObject = null;
  t.el.remove();
  tiles.delete(id);
  $("empty").hidden = tiles.size > 0;
}

function attach(t) {
  const tracks = [...t.streams].map((s) => s.mediaStreamTrack);
  t.el.classList.toggle("has-video", tracks.some((x) => x.kind === "video"));
  if (!tracks.length) {
    t.video.srcObject = null;
    return;
  }
  t.video.srcObject = new MediaStream(tracks);
  t.video.play().catch(() => {
    // Autoplay with sound needs a gesture the page may not have had: play muted and offer the sound.
    t.video.muted = true;
    t.el.querySelector(".unmute").hidden = false;
    t.video.play().catch(() => {});
  });
}

// ---------------------------------------------------------------------------------------------------------
// The stage

const strategy = {
  stageStreamsToPublish: () => (publishing ? localStreams : []),
  shouldPublishParticipant: () => publishing,
  shouldSubscribeToParticipant: () => SubscribeType.AUDIO_VIDEO,
};

function setJoined(joined) {
  $("join").disabled = joined;
  $("leave").disabled = !joined;
  $("token").disabled = joined;
}

const stateText = {
  [ConnectionState.CONNECTING]: "Connecting...",
  [ConnectionState.CONNECTED]: "Joined",
  [ConnectionState.DISCONNECTED]: "Not joined.",
  [ConnectionState.ERRORED]: "Not joined (error).",
};

function showStatus() {
  if (!stage) return setStatus("Not joined.");
  let s = stateText[stage.connectionState] ?? stage.connectionState;
  if (stage.connectionState === ConnectionState.CONNECTED) {
    s += ` stage ${stage.claims.stageId} as ${stage.claims.userId || stage.claims.participantId}`;
    if (stage.publishState === PublishState.PUBLISHED) s += ", publishing";
    s += ".";
    // Subscribe-only participants are counted, not listed (docs/DESIGN.md §4.3).
    if (subscriberCount > 0) s += ` ${subscriberCount} watching.`;
  }
  setStatus(s);
}

function wire(st) {
  subscriberCount = 0;
  st.on(StageEvents.STAGE_CONNECTION_STATE_CHANGED, showStatus);
  st.on(StageEvents.STAGE_SUBSCRIBER_COUNT_CHANGED, (n) => {
    subscriberCount = n;
    showStatus();
  });
  st.on(StageEvents.STAGE_PARTICIPANT_JOINED, (p) => tileFor(p));
  st.on(StageEvents.STAGE_PARTICIPANT_LEFT, (p) => removeTile(p.id));
  st.on(StageEvents.STAGE_PARTICIPANT_UPDATED, (p) => {
    const t = tiles.get(p.id);
    if (t) updateTile(t, p);
  });
  st.on(StageEvents.STAGE_PARTICIPANT_STREAMS_ADDED, (p, streams) => {
    const t = tileFor(p);
    for (const s of streams) t.streams.add(s);
    attach(t);
  });
  st.on(StageEvents.STAGE_PARTICIPANT_STREAMS_REMOVED, (p, streams) => {
    const t = tiles.get(p.id);
    if (!t) return;
    for (const s of streams) t.streams.delete(s);
    attach(t);
  });
  st.on(StageEvents.STAGE_PARTICIPANT_SUBSCRIBE_STATE_CHANGED, (p, state) => {
    const t = tiles.get(p.id);
    if (t) t.el.dataset.subscribeState = state;
  });
  st.on(StageEvents.STAGE_PARTICIPANT_PUBLISH_STATE_CHANGED, (p, state) => {
    const label = {
      [PublishState.ATTEMPTING_PUBLISH]: "connecting",
      [PublishState.PUBLISHED]: "live",
      [PublishState.ERRORED]: "error",
      [PublishState.NOT_PUBLISHED]: "",
    }[state];
    $("local-state").textContent = label ?? "";
    $("local-tile").dataset.publishState = state;
    if (state === PublishState.PUBLISHED) showError("");
    showStatus();
  });
  st.on(StageEvents.ERROR, (err) => {
    showError(describeError(err));
    if (err.category === ErrorCategory.PUBLISH_ERROR && err.fatal) {
      // Publishing was refused for good (no capability, stage full, codec): stop the camera, keep watching.
      publishing = false;
      $("publish").checked = false;
      stopMedia();
      st.refreshStrategy();
    }
  });
  st.on(StageEvents.STAGE_LEFT, (reason, err) => {
    if (st !== stage) return;
    stage = null;
    reset();
    if (reason !== LeaveReason.USER_INITIATED) showError(leaveText(reason, err));
  });
}

function reset() {
  for (const id of [...tiles.keys()]) removeTile(id);
  stopMedia();
  setJoined(false);
  showStatus();
}

async function join() {
  showError("");
  let claims;
  try {
    claims = readToken();
  } catch (e) {
    showError(describeError(e));
    return;
  }
  if (!claims) {
    showError("Paste a participant token first.");
    return;
  }
  setJoined(true);
  publishing = $("publish").checked;
  if (publishing) {
    try {
      await startMedia();
    } catch (e) {
      // Without a camera one can still watch: join anyway and say why nothing is published.
      showError(mediaErrorText(e));
      publishing = false;
      $("publish").checked = false;
    }
  }
  const st = new Stage($("token").value, strategy);
  stage = st;
  wire(st);
  try {
    await st.join();
  } catch (e) {
    if (stage === st) stage = null;
    reset();
    showError(describeError(e));
  }
}

async function leave() {
  const st = stage;
  if (!st) return;
  await st.leave();
}

async function publishChanged() {
  const want = $("publish").checked;
  if (!stage) return; // before joining it is only a preference
  if (want) {
    try {
      await startMedia();
    } catch (e) {
      showError(mediaErrorText(e));
      $("publish").checked = false;
      return;
    }
  }
  publishing = want;
  stage.refreshStrategy();
  if (!want) stopMedia();
}

// Numbers for tests and for curious people (open the console: await openstageJoin.stats()).
async function stats() {
  const codecOf = (rep, v) => (v.codecId ? rep.get(v.codecId) : undefined);
  const out = {
    connectionState: stage?.connectionState ?? ConnectionState.DISCONNECTED,
    publishState: stage?.publishState ?? PublishState.NOT_PUBLISHED,
    subscriberCount,
    local: {},
    remote: {},
  };
  for (const s of localStreams) {
    const rep = await s.requestRTCStats();
    rep?.forEach((v) => {
      if (v.type !== "outbound-rtp") return;
      const c = codecOf(rep, v);
      out.local[v.kind] = {
        packetsSent: v.packetsSent ?? 0,
        framesEncoded: v.framesEncoded,
        frameWidth: v.frameWidth,
        frameHeight: v.frameHeight,
        mimeType: c?.mimeType,
        sdpFmtpLine: c?.sdpFmtpLine,
      };
    });
  }
  for (const [id, t] of tiles) {
    const r = (out.remote[id] = { userId: t.info.userId, publishing: t.info.isPublishing, subscribeState: t.el.dataset.subscribeState ?? SubscribeState.NOT_SUBSCRIBED });
    for (const s of t.streams) {
      const rep = await s.requestRTCStats();
      rep.forEach((v) => {
        if (v.type !== "inbound-rtp") return;
        const c = codecOf(rep, v);
        r[v.kind] = {
          packetsReceived: v.packetsReceived ?? 0,
          framesDecoded: v.framesDecoded,
          frameWidth: v.frameWidth,
          frameHeight: v.frameHeight,
          totalSamplesReceived: v.totalSamplesReceived,
          mimeType: c?.mimeType,
        };
      });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Start

$("sdk").textContent = SDK_VERSION;
const params = new URLSearchParams(location.search);
if (params.has("token")) {
  $("token").value = params.get("token");
  // The token is a credential: keep it out of the history and of anything that reads the address bar.
  history.replaceState(null, "", location.pathname);
}
showClaims();
$("token").addEventListener("input", showClaims);
$("join").addEventListener("click", join);
$("leave").addEventListener("click", leave);
$("publish").addEventListener("change", publishChanged);
$("preview").addEventListener("click", togglePreview);
$("mute-mic").addEventListener("click", () => toggleMuted(StreamType.AUDIO));
$("stop-cam").addEventListener("click", () => toggleMuted(StreamType.VIDEO));
// Leaving on unload saves the others the seconds the server needs to notice a vanished peer.
window.addEventListener("pagehide", () => stage?.leave());
window.openstageJoin = { stats, get stage() { return stage; } };
document.body.dataset.ready = "true";
