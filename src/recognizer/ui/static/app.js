"use strict";
// The page talks to the same JSON API as every other client: GET /v1/models, POST /v1/classify.
const $ = (id) => document.getElementById(id);
const zone = $("drop-zone"), input = $("file-input"), modelSelect = $("model-select"), topk = $("topk-select");
let lastFile = null;

async function loadModels() {
  try {
    const models = await (await fetch("/v1/models")).json();
    for (const m of models) {
      const option = new Option(`${m.name} (${m.accuracy["acc@1"]}% top-1)${m.default ? " — default" : ""}`, m.name);
      option.disabled = !m.available_offline && !m.loaded;
      modelSelect.add(option);
    }
  } catch (err) { /* the picker stays at "default" */ }
}

function show(el, visible) { el.hidden = !visible; }

function renderPredictions(body) {
  const list = $("predictions");
  list.replaceChildren();
  for (const p of body.predictions) {
    const pct = (p.score * 100).toFixed(1);
    const li = document.createElement("li");
    li.innerHTML = `<span class="bar" style="width:${pct}%"></span>` +
      `<span class="row"><span><span class="label"></span><span class="wnid"></span></span><span class="pct">${pct}%</span></span>`;
    li.querySelector(".label").textContent = p.label;
    li.querySelector(".wnid").textContent = `${p.wnid} · #${p.index}`;
    li.setAttribute("aria-label", `${p.label}, ${pct} percent`);
    list.append(li);
  }
  $("meta").textContent = `${body.model} · ${body.engine} · ${body.timing_ms.total.toFixed(0)} ms on the server`;
}

async function classify(file) {
  lastFile = file;
  $("preview").src = URL.createObjectURL(file);
  show($("preview-figure"), true);
  show($("error"), false);
  $("predictions").replaceChildren();
  $("meta").textContent = "";
  $("status").textContent = "Recognizing…";
  $("result").setAttribute("aria-busy", "true");
  const form = new FormData();
  form.append("file", file);
  const params = new URLSearchParams({ top_k: topk.value });
  if (modelSelect.value) params.set("model", modelSelect.value);
  try {
    const response = await fetch(`/v1/classify?${params}`, { method: "POST", body: form });
    const body = await response.json();
    if (!response.ok) throw new Error(body.detail || `the server answered ${response.status}`);
    $("status").textContent = "";
    renderPredictions(body);
  } catch (err) {
    $("status").textContent = "";
    $("error").textContent = `Could not recognize this file: ${err.message}`;
    show($("error"), true);
  } finally {
    $("result").setAttribute("aria-busy", "false");
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
  const item = [...e.clipboardData.items].find((i) => i.kind === "file");
  if (item) classify(item.getAsFile());
});
for (const select of [modelSelect, topk]) select.addEventListener("change", () => lastFile && classify(lastFile));
loadModels();
