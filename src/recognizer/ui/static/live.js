// The Live tab. Two things:
// 1. This device's camera (webcam mode): getUserMedia frames, scaled so the short side is ~320 px
//    and encoded as JPEG on a canvas, go over one WebSocket (WS /v1/streams/webcam) with exactly
//    one frame in flight: the next, newest frame leaves only once the answer to the last one is
//    back, so a slow server never builds a backlog. The top labels are drawn over the video.
//    The session cookie authenticates the socket, like every other request of the page.
// 2. The server's own streams (GET /v1/streams, live over Server-Sent Events from
//    /v1/streams/events): state, current labels, rules and last events, with a form to add one
//    and a button to remove one. A server without streams (404), or one that runs none (409),
//    gets a sentence instead of the list. Both stop when the tab is left or the user logs out.
import { api, can, onSignedIn, onSignedOut, problem, session } from "/static/session.js";

const $ = (id) => document.getElementById(id);
const panel = $("panel-live");
const video = $("camera-video"), overlay = $("live-overlay"), stage = $("camera-stage");
const startButton = $("camera-start"), stopButton = $("camera-stop"), cameraStats = $("camera-stats");
const streamForm = $("stream-form"), streamList = $("stream-list");

const SHORT_SIDE = 320; // px: what the model needs (224) with room for its crop; small frames travel fast
const JPEG_QUALITY = 0.8;
const TOP_LABELS = 3;
const RETRY_MS = 2000; // reconnecting after a lost connection, and waiting out a busy server
const POLL_MS = 2000; // GET /v1/streams where Server-Sent Events are not to be had
const QUIET_LEVEL = 0.05; // rules below this level are counted, not named
const MEDIA_TIME_BELOW = 1e9; // an event's "at": seconds into a file's video below this, else epoch seconds
const percent = (score) => `${(score * 100).toFixed(0)}%`;
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit", second: "2-digit" });
const plural = (n, one, many = `${one}s`) => `${n.toLocaleString()} ${n === 1 ? one : many}`;

function show(el, visible) { el.hidden = !visible; }

function showProblem(id, message) {
  $(id).textContent = message;
  show($(id), Boolean(message));
}

// ---- webcam mode --------------------------------------------------------------------------

const cam = {
  stream: null, // the MediaStream while the camera is on
  socket: null,
  busy: false, // a frame is on its way or being answered: exactly one in flight
  fresh: false, // the video shows a picture not sent yet
  holdUntil: 0, // a busy or still-loading server is asked again after a pause
  sentAt: 0,
  answers: [], // times of recent answers, for the frame rate
  lastTop: "",
  retry: null,
};
const canvas = document.createElement("canvas");

/** What a getUserMedia refusal means for the person in front of the camera. */
function cameraMessage(err) {
  switch (err && err.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "The camera permission was denied. Allow the camera for this site in the browser's site settings, then press Start camera again.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No camera was found on this device.";
    case "NotReadableError":
    case "AbortError":
      return "The camera is in use by another program, or the system refused it. Close that program and try again.";
    default:
      return `The camera could not be started${err && err.message ? `: ${err.message}` : "."}`;
  }
}

async function startCamera() {
  showProblem("camera-error", "");
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showProblem("camera-error", window.isSecureContext
      ? "This browser cannot use a camera."
      : "Browsers allow cameras only on HTTPS pages or on localhost: open this server over HTTPS.");
    return;
  }
  startButton.disabled = true;
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  } catch (err) {
    startButton.disabled = false;
    showProblem("camera-error", cameraMessage(err));
    return;
  }
  if (panel.hidden || !session.active) { // the tab was left while the browser asked
    for (const track of stream.getTracks()) track.stop();
    startButton.disabled = false;
    return;
  }
  cam.stream = stream;
  video.srcObject = stream;
  show(stage, true);
  stopButton.disabled = false;
  cameraStats.textContent = "Connecting…";
  for (const track of stream.getVideoTracks()) {
    track.addEventListener("ended", () => cam.stream === stream && stopCamera("The camera stopped: it was unplugged, or another program took it."));
  }
  if (!video.videoWidth) await new Promise((resolve) => video.addEventListener("loadedmetadata", resolve, { once: true }));
  if (cam.stream !== stream) return; // stopped while the first picture was on its way
  video.play().catch(() => { /* autoplay of a muted video is allowed; a paused one still draws */ });
  watchFrames(stream);
  connect();
}

/** Note each new picture of the camera, and send it at once if no frame is in flight: the
 * server sees the newest picture, never the same one twice. Without requestVideoFrameCallback,
 * every animation frame counts as new. */
function watchFrames(stream) {
  const next = (fn) => ("requestVideoFrameCallback" in video ? video.requestVideoFrameCallback(fn) : requestAnimationFrame(fn));
  const onPicture = () => {
    if (cam.stream !== stream) return; // stopped: the loop ends
    cam.fresh = true;
    sendFrame(cam.socket);
    next(onPicture);
  };
  next(onPicture);
}

function stopCamera(message = "") {
  clearTimeout(cam.retry);
  const socket = cam.socket;
  cam.socket = null; // its close event now finds nothing to do
  if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000, "camera stopped");
  if (cam.stream) for (const track of cam.stream.getTracks()) track.stop();
  cam.stream = null;
  cam.busy = false;
  cam.fresh = false;
  cam.holdUntil = 0;
  cam.answers = [];
  cam.lastTop = "";
  video.srcObject = null;
  show(stage, false);
  overlay.replaceChildren();
  cameraStats.textContent = "";
  $("live-announce").textContent = "";
  startButton.disabled = false;
  stopButton.disabled = true;
  showProblem("camera-error", message);
}

function connect() {
  const url = new URL("/v1/streams/webcam", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("top_k", String(TOP_LABELS));
  const socket = new WebSocket(url, "recognizer");
  cam.socket = socket;
  cam.busy = false;
  let refusal = "";
  socket.addEventListener("open", () => {
    cam.fresh = true; // the picture on screen now
    sendFrame(socket);
  });
  socket.addEventListener("message", (e) => {
    let body;
    try { body = JSON.parse(e.data); } catch (err) { return; }
    if (body.frame === null && body.error) refusal = body.error.detail; // the close follows
    else onAnswer(socket, body);
  });
  socket.addEventListener("close", (e) => {
    if (cam.socket !== socket) return; // stopped on purpose, or replaced
    cam.socket = null;
    if (e.code === 1008 || e.code === 1009) {
      const reason = refusal || e.reason || "the server refused the connection";
      stopCamera(`The server stopped webcam mode: ${reason}`);
      return;
    }
    cameraStats.textContent = "The connection to the server was lost; reconnecting…";
    cam.retry = setTimeout(() => cam.stream && connect(), RETRY_MS);
  });
}

/** Draw the newest video frame, downscaled, and send it as JPEG; one frame at a time. */
async function sendFrame(socket) {
  if (!socket || cam.busy || !cam.fresh || performance.now() < cam.holdUntil) return;
  if (socket !== cam.socket || socket.readyState !== WebSocket.OPEN || !video.videoWidth) return;
  cam.busy = true;
  cam.fresh = false;
  const scale = Math.min(1, SHORT_SIDE / Math.min(video.videoWidth, video.videoHeight));
  canvas.width = Math.round(video.videoWidth * scale);
  canvas.height = Math.round(video.videoHeight * scale);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", JPEG_QUALITY));
  if (!blob || socket !== cam.socket || socket.readyState !== WebSocket.OPEN) {
    cam.busy = false;
    return;
  }
  cam.sentAt = performance.now();
  socket.send(blob);
}

function onAnswer(socket, body) {
  const now = performance.now();
  const latency = now - cam.sentAt;
  cam.busy = false;
  cam.answers.push(now);
  while (cam.answers.length > 1 && now - cam.answers[0] > 2000) cam.answers.shift();
  const span = (now - cam.answers[0]) / 1000;
  const fps = span > 0 ? (cam.answers.length - 1) / span : 0;
  let facts = `${fps.toFixed(1)} fps · ${latency.toFixed(0)} ms per frame`;
  if (body.error) {
    facts += ` · last frame: ${body.error.detail}`;
  } else {
    paintOverlay(body.predictions);
    if (body.timing_ms && body.timing_ms.total != null) facts += ` (${body.timing_ms.total.toFixed(0)} ms on the server)`;
    if (body.model) facts = `${body.model} · ${facts}`;
  }
  if (body.dropped) facts += ` · ${plural(body.dropped, "frame")} skipped by the server`;
  cameraStats.textContent = facts;
  // a busy or still-loading server (429, 503) is asked again after a pause, not 30 times a second
  if (body.error && [429, 503].includes(body.error.status)) {
    cam.holdUntil = now + RETRY_MS;
    setTimeout(() => sendFrame(socket), RETRY_MS);
  } else {
    sendFrame(socket); // the newest picture, if one came while this frame was away
  }
}

function paintOverlay(predictions) {
  overlay.replaceChildren(...predictions.slice(0, TOP_LABELS).map((p) => {
    const li = document.createElement("li");
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = p.label;
    const score = document.createElement("span");
    score.className = "pct";
    score.textContent = percent(p.score);
    li.append(label, " ", score);
    return li;
  }));
  // screen readers hear the best label when it changes, not every frame
  const top = predictions.length ? predictions[0].label : "";
  if (top !== cam.lastTop) {
    cam.lastTop = top;
    $("live-announce").textContent = top ? `Camera: ${top}` : "";
  }
}

startButton.addEventListener("click", startCamera);
stopButton.addEventListener("click", () => stopCamera());

// ---- the server's streams -----------------------------------------------------------------

const streams = {
  source: null, // the EventSource while the tab is shown
  poll: null,
  generation: 0, // answers of an earlier visit (or user) paint nothing
  cards: new Map(), // name -> its <li>, updated in place so focus and scroll stay put
  last: new Map(), // name -> the stream as last painted (a card added or removed before the next snapshot)
};

function streamsNote(message) { $("streams-note").textContent = message; }

/** A status snapshot: {"streams": [S...]}; cards come, change in place, and go. */
function renderStreams(list) {
  const seen = new Set();
  streams.last = new Map(list.map((s) => [s.name, s]));
  for (const s of list) {
    seen.add(s.name);
    let card = streams.cards.get(s.name);
    if (!card) {
      card = makeCard(s.name);
      streams.cards.set(s.name, card);
    }
    fillCard(card, s);
  }
  for (const [name, card] of streams.cards) {
    if (!seen.has(name)) {
      card.remove();
      streams.cards.delete(name);
    }
  }
  const ordered = [...streams.cards.keys()].sort().map((name) => streams.cards.get(name));
  if (ordered.some((card, i) => streamList.children[i] !== card)) streamList.replaceChildren(...ordered);
  streamsNote(list.length ? "" : "No streams yet. Add one with its URL: rtsp://, http(s)://, a camera device or a video file on the server.");
}

function part(tag, className, parent) {
  const el = document.createElement(tag);
  el.className = className;
  parent.append(el);
  return el;
}

function makeCard(name) {
  const card = document.createElement("li");
  card.className = "stream-card";
  card.dataset.name = name;
  const head = part("div", "stream-head", card);
  part("strong", "stream-name", head).textContent = name;
  part("span", "state", head);
  if (can("streams")) {
    const remove = part("button", "danger remove", head);
    remove.type = "button";
    remove.textContent = "Remove";
    remove.setAttribute("aria-label", `Remove stream ${name}`);
    remove.addEventListener("click", () => removeStream(name, remove));
  }
  part("p", "url", card);
  part("p", "stream-stats", card);
  part("p", "reason", card);
  part("ol", "stream-labels", card).setAttribute("aria-label", `Labels of ${name} now`);
  part("p", "stream-rules", card);
  part("ol", "events", card).setAttribute("aria-label", `Last events of ${name}`);
  return card;
}

const q = (card, selector) => card.querySelector(selector);

function fillCard(card, s) {
  card.dataset.state = s.state;
  q(card, ".state").textContent = s.state;
  q(card, ".url").textContent = s.url;
  q(card, ".url").title = s.url;
  const facts = [`${Number(s.fps_processed || 0).toFixed(1)} fps recognized of ${Number(s.fps_in || 0).toFixed(1)} in (asked ${s.fps})`];
  if (s.frame_age_s != null) facts.push(`frame ${Number(s.frame_age_s).toFixed(1)} s old`);
  if (s.dropped) facts.push(`${plural(s.dropped, "frame")} dropped`);
  if (s.reconnects) facts.push(plural(s.reconnects, "reconnect"));
  q(card, ".stream-stats").textContent = facts.join(" · ");
  q(card, ".reason").textContent = s.reason || "";
  show(q(card, ".reason"), Boolean(s.reason));
  q(card, ".stream-labels").replaceChildren(...(s.labels || []).slice(0, TOP_LABELS).map((p) => {
    const li = document.createElement("li");
    li.textContent = `${p.label} ${percent(p.score)}`;
    return li;
  }));
  q(card, ".stream-rules").textContent = describeRules(s.levels || {}, new Set(s.active || []));
  show(q(card, ".stream-rules"), Object.keys(s.levels || {}).length > 0);
  q(card, ".events").replaceChildren(...(s.events || []).map(eventItem));
}

/** The rules that are active or stirring, highest level first; a count of the quiet ones. */
function describeRules(levels, active) {
  const all = Object.entries(levels).sort((a, b) => b[1] - a[1]);
  const shown = all.filter(([rule, level]) => active.has(rule) || level >= QUIET_LEVEL);
  const named = shown.map(([rule, level]) => `${rule} ${Number(level).toFixed(2)}${active.has(rule) ? " (active)" : ""}`);
  const quiet = all.length - shown.length;
  if (quiet) named.push(shown.length ? `${quiet} more below ${QUIET_LEVEL}` : `${plural(quiet, "rule")}, all below ${QUIET_LEVEL}`);
  return `Rules: ${named.join(" · ")}`;
}

/** An event's time: the clock time for a live source, the position in the video for a file. */
function eventTime(at) {
  if (at >= MEDIA_TIME_BELOW) {
    const when = new Date(at * 1000);
    return { text: timeFormat.format(when), iso: when.toISOString() };
  }
  const minutes = Math.floor(at / 60), seconds = at - 60 * minutes;
  return { text: `${minutes}:${seconds.toFixed(1).padStart(4, "0")} into the video`, iso: `PT${at.toFixed(1)}S` };
}

/** One event, newest first: "12:03:04 cat started · tabby · score 0.93". */
function eventItem(e) {
  const li = document.createElement("li");
  li.className = `event ${e.kind}`;
  const when = document.createElement("time");
  const at = eventTime(Number(e.at));
  when.dateTime = at.iso;
  when.textContent = at.text;
  li.append(when, " ", describeEvent(e));
  return li;
}

function describeEvent(e) {
  const bits = [];
  if (e.kind === "started") bits.push(`${e.rule} started`);
  else if (e.kind === "ended") bits.push(`${e.rule} ended${e.duration_s != null ? ` after ${Number(e.duration_s).toFixed(1)} s` : ""}`);
  else if (e.kind === "source_lost") bits.push("source lost");
  else if (e.kind === "source_restored") bits.push("source restored");
  else bits.push(e.kind);
  if (e.label) bits.push(e.label);
  if (e.score != null) bits.push(`${e.kind === "ended" ? "peak" : "score"} ${Number(e.score).toFixed(2)}`);
  if (e.reason) bits.push(e.reason);
  return bits.join(" · ");
}

/** A new event as it happens: said aloud (politely), and its stream's card flashes. */
function onAlert(e) {
  $("stream-alert").textContent = `${e.stream}: ${describeEvent(e)}`;
  const card = streams.cards.get(e.stream);
  if (!card) return;
  const list = q(card, ".events");
  list.prepend(eventItem(e));
  while (list.children.length > 10) list.lastChild.remove();
  card.classList.remove("alerted");
  void card.offsetWidth; // restart the animation
  card.classList.add("alerted");
}

/** GET /v1/streams: true when it answered the list; otherwise says why and returns false. */
async function loadStreams(mine) {
  let response;
  try {
    response = await api("/v1/streams", { headers: { Accept: "application/json" } });
  } catch (err) {
    if (mine === streams.generation) streamsNote("The server could not be reached.");
    return false;
  }
  if (mine !== streams.generation) return false;
  if (response.ok) {
    renderStreams((await response.json()).streams || []);
    return true;
  }
  const why = response.status === 404 ? "" : await problem(response);
  if (mine !== streams.generation) return false;
  show(streamForm, false);
  renderStreams([]);
  streamsNote(why ? `Server streams are not available: ${why}` : "This server does not run streams.");
  return false;
}

async function watchStreams() {
  const mine = ++streams.generation;
  if (!can("streams")) {
    show($("streams-body"), false);
    streamsNote("Server streams need the streams scope, which this account does not have.");
    return;
  }
  show($("streams-body"), true);
  show(streamForm, true);
  if (!(await loadStreams(mine)) || mine !== streams.generation) return;
  const source = new EventSource("/v1/streams/events");
  streams.source = source;
  source.addEventListener("status", (e) => {
    if (mine === streams.generation) renderStreams(JSON.parse(e.data).streams || []);
  });
  source.addEventListener("alert", (e) => mine === streams.generation && onAlert(JSON.parse(e.data)));
  source.addEventListener("error", () => {
    // CONNECTING: the server ended the stream (it does every minute) and the browser reconnects.
    // CLOSED: a refusal (404, 403, ...) the browser will not retry: poll instead, which also says why.
    if (source.readyState !== EventSource.CLOSED || mine !== streams.generation) return;
    streams.source = null;
    const poll = async () => {
      if (mine !== streams.generation) return;
      if (await loadStreams(mine)) streams.poll = setTimeout(poll, POLL_MS);
    };
    poll();
  });
}

function unwatchStreams() {
  streams.generation += 1;
  if (streams.source) streams.source.close();
  streams.source = null;
  clearTimeout(streams.poll);
}

async function addStream(e) {
  e.preventDefault();
  const button = streamForm.querySelector('button[type="submit"]');
  const fields = streamForm.elements;
  const body = { name: fields.name.value.trim(), url: fields.url.value.trim() };
  if (fields.fps.value !== "") body.fps = Number(fields.fps.value);
  button.disabled = true;
  showProblem("stream-error", "");
  let failure = "";
  try {
    const response = await api("/v1/streams", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
    if (response.ok) {
      const added = await response.json();
      streamForm.reset();
      renderStreams([...streams.last.values(), added].filter((s) => s === added || s.name !== added.name));
    } else {
      failure = await problem(response);
    }
  } catch (err) {
    failure = "the server could not be reached";
  } finally {
    button.disabled = false;
  }
  if (failure) showProblem("stream-error", `Could not add the stream: ${failure}`);
}

async function removeStream(name, button) {
  if (!window.confirm(`Stop and remove the stream “${name}”? Its rules and events go with it.`)) return;
  button.disabled = true;
  showProblem("stream-error", "");
  let failure = "";
  try {
    const response = await api(`/v1/streams/${encodeURIComponent(name)}`, { method: "DELETE" });
    if (!response.ok && response.status !== 404) failure = await problem(response);
  } catch (err) {
    failure = "the server could not be reached";
  }
  if (failure) {
    button.disabled = false;
    showProblem("stream-error", `Could not remove ${name}: ${failure}`);
    return;
  }
  renderStreams([...streams.last.values()].filter((s) => s.name !== name));
}

streamForm.addEventListener("submit", addStream);

// ---- the tab ------------------------------------------------------------------------------

function shown() { watchStreams(); }

function left() {
  unwatchStreams();
  if (cam.stream || cam.socket) stopCamera(); // the camera is on only while its picture is in view
}

/** Logged out: nothing of the last user's streams or camera stays on the page. */
function forget() {
  left();
  streams.cards.clear();
  streams.last.clear();
  streamList.replaceChildren();
  streamsNote("");
  showProblem("stream-error", "");
  $("stream-alert").textContent = "";
}

document.addEventListener("recognizer:tab", (e) => {
  if (e.detail === "live" && session.active) shown();
  else if (e.detail !== "live") left();
});
onSignedIn(() => !panel.hidden && shown());
onSignedOut(forget);
