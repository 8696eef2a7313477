// The page talks to the same JSON API as every other client: GET /v1/models, POST /v1/classify.
// Its requests say X-Recognizer-Source: web, so their history rows read "web" (the History tab).
// session.js's api() adds the login's CSRF token to the POST and shows the login form on a 401.
import { api, onSignedIn, onSignedOut, problem } from "/static/session.js";

const $ = (id) => document.getElementById(id);
const zone = $("drop-zone"), input = $("file-input"), modelSelect = $("model-select"), topk = $("topk-select");
const result = $("result"), answer = $("answer"), figure = $("preview-figure"), preview = $("preview");
let lastFile = null;
let previewUrl = null;
let request = 0; // only the newest request may paint its answer
let modelsLoaded = false;

const percent = (value) => `${Number(value).toFixed(1)}%`;

async function loadModels() {
  let models;
  try {
    const response = await api("/v1/models");
    if (!response.ok) return; // the picker stays at "default"
    models = await response.json();
  } catch (err) { return; }
  if (modelsLoaded) return; // a second login while the first answer was on its way
  modelsLoaded = true;
  let unavailable = 0;
  for (const m of models) {
    const usable = m.available_offline || m.loaded;
    const acc = m.accuracy && m.accuracy["acc@1"] != null ? ` (${percent(m.accuracy["acc@1"])} top-1)` : "";
    const notes = [];
    if (m.default) notes.push("default");
    if (!usable) notes.push("weights not installed");
    const text = `${m.name}${acc}${notes.length ? ` — ${notes.join(", ")}` : ""}`;
    const option = new Option(text, m.name);
    option.disabled = !usable;
    if (!usable) {
      option.title = `${m.name}'s weights are not on this machine`;
      unavailable += 1;
    }
    if (m.default) modelSelect.options[0].textContent = `default (${m.name})`;
    modelSelect.add(option);
  }
  show($("model-note"), unavailable > 0);
}

function show(el, visible) { el.hidden = !visible; }

function clearPreview() {
  show(figure, false);
  result.classList.remove("with-preview");
  preview.removeAttribute("src");
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = null;
}

function showPreview(file) {
  clearPreview();
  previewUrl = URL.createObjectURL(file);
  preview.src = previewUrl;
  show(figure, true);
  result.classList.add("with-preview");
}

// A file the browser can't draw (a PDF renamed .jpg, an empty file, a TIFF) gets no broken-image icon.
preview.addEventListener("error", () => { if (preview.getAttribute("src")) clearPreview(); });

function bringIntoView() {
  const reduce = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  answer.scrollIntoView({ block: "nearest", behavior: reduce ? "auto" : "smooth" });
}

function renderPredictions(body) {
  const list = $("predictions");
  list.replaceChildren();
  for (const p of body.predictions) {
    const pct = percent(p.score * 100);
    const li = document.createElement("li");
    const bar = document.createElement("span");
    bar.className = "bar";
    li.style.setProperty("--score", pct);
    const row = document.createElement("span");
    row.className = "row";
    const name = document.createElement("span");
    name.className = "name";
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = p.label;
    const wnid = document.createElement("span");
    wnid.className = "wnid";
    wnid.textContent = `${p.wnid} · #${p.index}`;
    const score = document.createElement("span");
    score.className = "pct";
    score.textContent = pct;
    name.append(label, " ", wnid);
    row.append(name, score);
    li.append(bar, row);
    li.setAttribute("aria-label", `${p.label}, ${pct.replace("%", " percent")}`);
    list.append(li);
  }
  const groups = Array.isArray(body.groups) ? body.groups.filter((g) => g.score >= 0.05).slice(0, 3) : [];
  $("groups").textContent = groups.length ? `Groups: ${groups.map((g) => `${g.name.replace(/_/g, " ")} ${percent(g.score * 100)}`).join(" · ")}` : "";
  show($("groups"), groups.length > 0);
  const total = body.timing_ms && body.timing_ms.total != null ? ` · ${body.timing_ms.total.toFixed(0)} ms on the server` : "";
  $("meta").textContent = `${body.model} · ${body.engine}${total}`;
}

async function classify(file) {
  const mine = ++request;
  lastFile = file;
  showPreview(file);
  show($("error"), false);
  $("error").textContent = "";
  $("predictions").replaceChildren();
  $("groups").textContent = "";
  show($("groups"), false);
  $("meta").textContent = "";
  $("status").textContent = "Recognizing…";
  answer.setAttribute("aria-busy", "true");
  const form = new FormData();
  form.append("file", file);
  const params = new URLSearchParams({ top_k: topk.value });
  if (modelSelect.value) params.set("model", modelSelect.value);
  try {
    const response = await api(`/v1/classify?${params}`, {
      method: "POST", body: form, headers: { "X-Recognizer-Source": "web" },
    });
    if (!response.ok) throw new Error(await problem(response));
    const body = await response.json();
    if (mine !== request) return;
    $("status").textContent = "";
    renderPredictions(body);
  } catch (err) {
    if (mine !== request) return;
    clearPreview();
    $("status").textContent = "";
    $("error").textContent = `Could not recognize this file: ${err.message}`;
    show($("error"), true);
  } finally {
    if (mine === request) {
      answer.setAttribute("aria-busy", "false");
      bringIntoView();
    }
  }
}

input.addEventListener("change", () => input.files[0] && classify(input.files[0]));
zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("dragging"); });
zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
zone.addEventListener("drop", (e) => {
  e.preventDefault();
  zone.classList.remove("dragging");
  if (e.dataTransfer.files[0]) classify(e.dataTransfer.files[0]);
});
document.addEventListener("paste", (e) => {
  // pasting into the History tab's filters, or into the login form, classifies nothing
  if ($("panel-classify").hidden || $("app-view").hidden) return;
  const item = [...e.clipboardData.items].find((i) => i.kind === "file");
  if (item) classify(item.getAsFile());
});
for (const select of [modelSelect, topk]) select.addEventListener("change", () => lastFile && classify(lastFile));

/** Back to an empty Classify tab: the next user of this browser sees nothing of the last one's. */
function reset() {
  request += 1; // an answer still on its way paints nothing
  lastFile = null;
  input.value = "";
  clearPreview();
  for (const id of ["status", "error", "groups", "meta"]) $(id).textContent = "";
  show($("error"), false);
  show($("groups"), false);
  $("predictions").replaceChildren();
  answer.setAttribute("aria-busy", "false");
}

onSignedIn(() => modelsLoaded || loadModels()); // the server answers only once it knows who asks
onSignedOut(reset);
