// The History tab: past recognitions from GET /v1/history (a table, newest first, a page at a
// time), plots from GET /v1/history/stats, export links to GET /v1/history/export. The table,
// the plots and the export links all take the same filters, so they always show the same rows.
// Users whose scopes include history:delete get a Delete button in a row's details.
import { columns, hbars, lines } from "/static/charts.js";
import { api, can, onSignedIn, onSignedOut, problem, session } from "/static/session.js";

const $ = (id) => document.getElementById(id);
const panel = $("panel-history"), form = $("history-filters"), rows = $("history-rows"), table = $("history-table");
const more = $("load-more"), sentinel = $("history-sentinel"), charts = $("charts");
const PAGE_SIZE = 50;
const HOUR = 3600e3, DAY = 24 * HOUR;
const MAX_BANDS = 1500; // beyond that (a year by hour, say) only buckets with rows get a column
const FILTERS = ["label", "group", "model", "source", "since", "until", "min_score", "errors"];

const state = {
  generation: 0, // only the newest load may paint; older answers are dropped, not aborted
  cursor: null,
  loadingMore: false,
  stats: null,
  groups: new Set(), // every label group any answer named, for the group filter's suggestions
  started: false,
};

const percent = (score) => `${(score * 100).toFixed(1)}%`;
const timeFormat = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", hour: "numeric", minute: "2-digit", second: "2-digit" });
const yearTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const hourFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const longHourFormat = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short", hour: "numeric", minute: "2-digit" });
const localDayFormat = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });
const dayFormat = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", timeZone: "UTC" });
const longDayFormat = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
const plural = (n, one, many = `${one}s`) => `${n.toLocaleString()} ${n === 1 ? one : many}`;

function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

function show(el, visible) { el.hidden = !visible; }

// ---- talking to the API -------------------------------------------------------------------

/** GET a JSON body; a problem+json answer (or any error) throws with its detail, which we show. */
async function getJSON(url) {
  let response;
  try {
    response = await api(url, { headers: { Accept: "application/json" } });
  } catch (err) {
    throw new Error("the server could not be reached");
  }
  if (!response.ok) throw new Error(await problem(response));
  return response.json();
}

/** The filters as query parameters: only those set; times as UTC ISO 8601 (the inputs are local). */
function filterParams() {
  const params = new URLSearchParams();
  for (const name of ["label", "group", "model", "source"]) {
    const value = form.elements[name].value.trim();
    if (value) params.set(name, value);
  }
  for (const name of ["since", "until"]) {
    const value = form.elements[name].value; // "2026-11-24T09:30", local time
    const when = value ? new Date(value) : null;
    if (when && !Number.isNaN(when.getTime())) params.set(name, when.toISOString());
  }
  const minScore = form.elements.min_score;
  if (minScore.value !== "" && minScore.checkValidity()) params.set("min_score", minScore.value);
  if (form.elements.errors.checked) params.set("errors", "true");
  return params;
}

const filtering = (params) => FILTERS.some((name) => params.has(name));

function showEmpty(empty, params) {
  $("history-empty").textContent = filtering(params)
    ? "No recognitions match these filters."
    : "No recognitions yet: classify a photo and it shows up here.";
  show($("history-empty"), empty);
  show($("table-wrap"), !empty);
}

function updateExports(params) {
  for (const format of ["csv", "jsonl", "parquet"]) {
    const query = new URLSearchParams(params);
    query.set("format", format);
    $(`export-${format}`).href = `/v1/history/export?${query}`;
  }
}

function showError(message, what = "load the history") {
  $("history-error").textContent = message ? `Could not ${what}: ${message}` : "";
  show($("history-error"), Boolean(message));
}

function setBusy(busy) {
  table.setAttribute("aria-busy", String(busy));
  charts.setAttribute("aria-busy", String(busy));
}

/** Reload the table's first page and the plots, for the current filters. */
async function reload() {
  const mine = ++state.generation;
  state.cursor = null; // no "load more" with the old filters' cursor meanwhile
  const params = filterParams();
  updateExports(params);
  setBusy(true);
  const list = new URLSearchParams(params);
  list.set("limit", String(PAGE_SIZE));
  const [page, summary] = await Promise.allSettled([
    getJSON(`/v1/history?${list}`),
    getJSON(`/v1/history/stats?${statsParams(params)}`),
  ]);
  if (mine !== state.generation) return;
  setBusy(false);
  const failed = [page, summary].find((answer) => answer.status === "rejected");
  showError(failed ? failed.reason.message : "");
  rows.replaceChildren();
  show($("history-list"), page.status === "fulfilled");
  if (page.status === "fulfilled") {
    appendRows(page.value.items);
    state.cursor = page.value.next_cursor;
    showEmpty(page.value.items.length === 0, params);
  }
  state.stats = summary.status === "fulfilled" ? summary.value : null;
  show(charts, state.stats !== null);
  drawCharts();
  describe(params);
  updateMore();
  if (sentinelNear()) loadMore();
}

function statsParams(params) {
  const stats = new URLSearchParams(params);
  stats.set("bucket", form.elements.bucket.value);
  stats.set("top", "10");
  return stats;
}

/** Redraw the plots and the summary alone (after a delete: the table already lost its row). */
async function reloadStats() {
  const mine = state.generation;
  const params = filterParams();
  try {
    const stats = await getJSON(`/v1/history/stats?${statsParams(params)}`);
    if (mine !== state.generation) return;
    state.stats = stats;
    drawCharts();
    describe(params);
  } catch (err) {
    if (mine === state.generation) showError(err.message, "update the plots");
  }
}

/** Whether the end of the table is on screen (or nearly): infinite scroll then loads the next page. */
function sentinelNear() {
  return !panel.hidden && sentinel.getBoundingClientRect().top < window.innerHeight + 300;
}

async function loadMore() {
  if (!state.cursor || state.loadingMore) return;
  const mine = state.generation;
  state.loadingMore = true;
  updateMore();
  const params = filterParams();
  params.set("limit", String(PAGE_SIZE));
  params.set("cursor", state.cursor);
  try {
    const page = await getJSON(`/v1/history?${params}`);
    if (mine === state.generation) {
      appendRows(page.items);
      state.cursor = page.next_cursor;
    }
  } catch (err) {
    if (mine === state.generation) {
      showError(err.message);
      state.cursor = null;
    }
  } finally {
    state.loadingMore = false;
    updateMore();
  }
  // the end may still be on screen (a tall window): keep going until the rows push it out
  // (state.cursor is the newest load's: null while a reload is under way)
  if (sentinelNear()) loadMore();
}

function updateMore() {
  show(more, Boolean(state.cursor));
  more.disabled = state.loadingMore;
  more.textContent = state.loadingMore ? "Loading…" : "Load more";
}

// ---- the table ----------------------------------------------------------------------------

function cell(className, ...content) {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.append(...content);
  return td;
}

function span(className, text) {
  const el = document.createElement("span");
  el.className = className;
  el.textContent = text;
  return el;
}

const groupText = (item) =>
  Array.isArray(item.groups)
    ? item.groups.filter((g) => g.score >= 0.05).slice(0, 3).map((g) => `${g.name.replace(/_/g, " ")} ${percent(g.score)}`).join(", ")
    : "";

function thumbnail(item) {
  if (!item.image) return [];
  const img = document.createElement("img");
  img.loading = "lazy"; // before src, or the browser starts loading at once
  img.decoding = "async";
  img.width = 48;
  img.height = 48;
  img.alt = item.name ? `${item.name}` : "the photo";
  img.src = `/v1/history/${encodeURIComponent(item.id)}/image`;
  img.addEventListener("error", () => img.remove()); // pruned since: no broken-image icon
  return [img];
}

function itemRow(item) {
  const tr = document.createElement("tr");
  tr.className = item.error ? "item error-row" : "item";
  tr.dataset.id = item.id;
  const when = new Date(item.created_at);
  const time = document.createElement("time");
  time.dateTime = item.created_at;
  time.textContent = (when.getFullYear() === new Date().getFullYear() ? timeFormat : yearTimeFormat).format(when);
  time.title = `${item.created_at} (UTC)`;
  const toggle = document.createElement("button");
  toggle.type = "button";
  toggle.className = "expand";
  toggle.setAttribute("aria-expanded", "false");
  toggle.setAttribute("aria-controls", `details-${item.id}`);
  toggle.title = "Show every label and the timings";
  toggle.append(time);
  tr.append(cell("photo", ...thumbnail(item)), cell("time", toggle));
  if (item.error) {
    const what = span("error-type", item.error.type);
    tr.append(cell("error-cell", what, " ", span("error-detail", item.error.detail)));
    tr.lastChild.colSpan = 3;
  } else {
    const top = item.predictions[0];
    tr.append(
      cell("label", ...(top ? [span("name", top.label), " ", span("pct", percent(top.score))] : ["—"])),
      cell("wnid", top ? top.wnid : ""),
      cell("groups", groupText(item)),
    );
  }
  const total = item.timing_ms && item.timing_ms.total != null ? item.timing_ms.total.toFixed(0) : "";
  tr.append(cell("model", item.model), cell("engine", item.engine), cell("source", item.source), cell("num", total));
  return tr;
}

function detailsRow(item) {
  const tr = document.createElement("tr");
  tr.className = "details";
  tr.id = `details-${item.id}`;
  const td = cell("");
  td.colSpan = 9;
  const body = document.createElement("div"); // stays in view while the table scrolls sideways
  body.className = "details-body";
  if (item.predictions.length) {
    const list = document.createElement("ol");
    list.className = "all-labels";
    for (const p of item.predictions) {
      const li = document.createElement("li");
      li.append(span("name", p.label), " ", span("wnid", `${p.wnid} · #${p.index}`), " ", span("pct", percent(p.score)));
      list.append(li);
    }
    body.append(list);
  }
  const facts = document.createElement("dl");
  const timing = Object.entries(item.timing_ms || {}).map(([k, v]) => `${k} ${Number(v).toFixed(1)} ms`).join(", ");
  const size = `${(item.size_bytes / 1024).toFixed(1)} KiB${item.width ? `, ${item.width}×${item.height}` : ""}`;
  for (const [term, value] of [
    ["File", item.name || "—"], ["Size", size], ["Timing", timing], ["Device", item.device],
    ["Client", item.client || "—"], ["Recorded", `${item.created_at} (UTC)`], ["Id", item.id],
  ]) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    facts.append(dt, dd);
  }
  body.append(facts);
  if (can("history:delete")) {
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "danger";
    remove.textContent = "Delete";
    remove.title = "Delete this recognition (and its photo) from the history";
    remove.addEventListener("click", () => deleteItem(item, remove));
    const actions = document.createElement("p");
    actions.className = "row-actions";
    actions.append(remove);
    body.append(actions);
  }
  td.append(body);
  tr.append(td);
  return tr;
}

/** DELETE /v1/history?id=ID, after the user says yes; then the row goes and the plots follow. */
async function deleteItem(item, button) {
  const top = item.predictions && item.predictions[0];
  const what = item.error ? `the rejected file ${item.name || ""}`.trim() : top ? `“${top.label}”` : "this recognition";
  const when = new Date(item.created_at).toLocaleString();
  if (!window.confirm(`Delete ${what} from ${when}? This cannot be undone.`)) return;
  const mine = state.generation;
  button.disabled = true;
  let failure = "";
  try {
    const response = await api(`/v1/history?${new URLSearchParams({ id: item.id })}`, {
      method: "DELETE", headers: { Accept: "application/json" },
    });
    if (!response.ok) failure = await problem(response);
  } catch (err) {
    failure = "the server could not be reached";
  }
  if (!session.active || mine !== state.generation) return; // logged out, or the table was reloaded
  if (failure) {
    button.disabled = false;
    showError(failure, "delete this recognition");
    return;
  }
  showError("");
  const tr = rows.querySelector(`tr.item[data-id="${CSS.escape(item.id)}"]`);
  if (tr) {
    const details = tr.nextElementSibling && tr.nextElementSibling.classList.contains("details") ? tr.nextElementSibling : null;
    const next = (details || tr).nextElementSibling;
    if (details) details.remove();
    tr.remove();
    items.delete(item.id);
    // focus stays in the table: on the next row's toggle, else the table's box
    const target = next ? next.querySelector("button.expand") : null;
    (target || $("table-wrap")).focus();
  }
  if (!rows.children.length && !state.cursor) showEmpty(true, filterParams());
  else if (sentinelNear()) loadMore(); // the rows below moved up: the end may be in view now
  reloadStats();
}

const items = new Map(); // id -> item, for the details row

function appendRows(list) {
  if (!rows.children.length) items.clear();
  const fragment = document.createDocumentFragment();
  for (const item of list) {
    items.set(item.id, item);
    fragment.append(itemRow(item));
  }
  rows.append(fragment);
}

function toggleDetails(tr) {
  const button = tr.querySelector("button.expand");
  const open = button.getAttribute("aria-expanded") === "true";
  button.setAttribute("aria-expanded", String(!open));
  tr.classList.toggle("open", !open);
  if (open) {
    const next = tr.nextElementSibling;
    if (next && next.classList.contains("details")) next.remove();
  } else {
    tr.after(detailsRow(items.get(tr.dataset.id)));
  }
}

rows.addEventListener("click", (e) => {
  const tr = e.target.closest("tr.item");
  if (tr && !e.target.closest("a") && !window.getSelection().toString()) toggleDetails(tr);
});

// ---- the plots ----------------------------------------------------------------------------

function floorTo(time, step) { return Math.floor(time / step) * step; }

/** One band per hour (day) from the period's start to its end, empty buckets included. */
function timeBands(stats) {
  const step = stats.bucket === "day" ? DAY : HOUR;
  const counts = new Map(stats.series.map((b) => [Date.parse(b.start), b]));
  const latency = new Map(stats.latency.map((b) => [Date.parse(b.start), b]));
  const known = [...counts.keys(), ...latency.keys()];
  let start = stats.since ? floorTo(Date.parse(stats.since), step) : Math.min(...known);
  let end = floorTo((stats.until ? Date.parse(stats.until) : Date.now()) - 1, step);
  if (known.length) {
    start = Math.min(start, ...known);
    end = Math.max(end, ...known);
  }
  let starts = [];
  if (Number.isFinite(start) && (end - start) / step < MAX_BANDS) {
    for (let t = start; t <= end; t += step) starts.push(t);
  } else {
    starts = [...new Set(known)].sort((a, b) => a - b);
  }
  return starts.map((t) => {
    const bucket = counts.get(t) || { count: 0, errors: 0 };
    const when = stats.bucket === "day"
      ? longDayFormat.format(t)
      : `${longHourFormat.format(t)}–${hourFormat.format(t + HOUR)}`;
    const midnight = new Date(t).getHours() === 0;
    return {
      start: t,
      order: stats.bucket === "day" ? Math.round(t / DAY) : new Date(t).getHours(),
      count: bucket.count,
      errors: bucket.errors,
      tick: stats.bucket === "day" ? dayFormat.format(t) : midnight ? localDayFormat.format(t) : hourFormat.format(t),
      when,
      tip: `${when}: ${plural(bucket.count, "recognition")}${bucket.errors ? `, ${bucket.errors} rejected` : ""}`,
      latency: latency.get(t) || null,
    };
  });
}

function chartWidth(container) {
  return Math.max(300, Math.min(760, Math.round(container.clientWidth || 480)));
}

function drawCharts() {
  const stats = state.stats;
  if (!stats) return;
  for (const g of stats.groups) state.groups.add(g.group);
  $("group-list").replaceChildren(...[...state.groups].sort().map((name) => new Option(name.replace(/_/g, " "), name)));
  const empty = "No recognitions in this period";
  const byDay = stats.bucket === "day";
  const unit = byDay ? "day" : "hour";
  const bands = timeBands(stats);
  const range = bands.length ? `from ${bands[0].when} to ${bands[bands.length - 1].when}` : "";
  const busiest = bands.reduce((best, b) => (b.count > (best ? best.count : 0) ? b : best), null);

  $("cap-volume").textContent = `Recognitions per ${unit}${byDay ? " (UTC days)" : ""}`;
  const volume = $("chart-volume");
  columns(volume, {
    width: chartWidth(volume),
    title: `Recognitions per ${unit}`,
    desc: stats.total
      ? `${bands.length} columns ${range}: ${plural(stats.total, "recognition")} in all, ${stats.errors} rejected` +
        (busiest ? `; the busiest ${unit} was ${busiest.when} with ${busiest.count}.` : ".")
      : empty,
    bands,
    yLabel: "recognitions",
    xLabel: byDay ? "day (UTC)" : "hour (local time)",
    parts: ["recognized", "rejected"],
    empty,
  });

  const latencyBands = bands.map((b) => ({
    tick: b.tick,
    order: b.order,
    tip: `${b.when} (${plural(b.latency ? b.latency.count : 0, "recognition")})`,
    values: b.latency ? { p50: b.latency.p50_ms, p95: b.latency.p95_ms } : null,
  }));
  const measured = stats.latency.filter((b) => Number.isFinite(b.p50_ms));
  $("cap-latency").textContent = `Latency per ${unit}, p50 and p95 (ms)`;
  const latencyBox = $("chart-latency");
  lines(latencyBox, {
    width: chartWidth(latencyBox),
    title: `Latency per ${unit}: median (p50) and 95th percentile (p95), in milliseconds`,
    desc: measured.length
      ? `Per ${unit} ${range}: p50 from ${Math.min(...measured.map((b) => b.p50_ms)).toFixed(1)} to ` +
        `${Math.max(...measured.map((b) => b.p50_ms)).toFixed(1)} ms, p95 up to ` +
        `${Math.max(...measured.map((b) => b.p95_ms)).toFixed(1)} ms.`
      : empty,
    bands: latencyBands,
    series: [{ key: "p50", name: "p50", cls: "p50" }, { key: "p95", name: "p95", cls: "p95" }],
    yLabel: "ms",
    xLabel: byDay ? "day (UTC)" : "hour (local time)",
    unit: "ms",
    empty,
  });

  const labelsBox = $("chart-labels");
  hbars(labelsBox, {
    width: chartWidth(labelsBox),
    title: "Top labels (the best label of each recognition)",
    desc: stats.labels.length ? stats.labels.map((l) => `${l.label}: ${l.count}`).join(", ") : empty,
    rows: stats.labels.map((l) => ({ name: l.label, count: l.count, tip: `${l.label} (${l.wnid}): ${plural(l.count, "recognition")}` })),
    cls: "ok",
    empty,
  });

  const groupsBox = $("chart-groups");
  hbars(groupsBox, {
    width: chartWidth(groupsBox),
    title: "Top label groups (of each recognition's best label)",
    desc: stats.groups.length ? stats.groups.map((g) => `${g.group.replace(/_/g, " ")}: ${g.count}`).join(", ") : empty,
    rows: stats.groups.map((g) => ({ name: g.group.replace(/_/g, " "), count: g.count, tip: `${g.group.replace(/_/g, " ")}: ${plural(g.count, "recognition")}` })),
    cls: "group",
    empty: stats.total ? "No label of these recognitions is in a group" : empty,
  });
}

function describe(params) {
  const stats = state.stats;
  if (!stats) {
    $("history-summary").textContent = "";
    return;
  }
  const period = params.has("since") || params.has("until")
    ? "in the chosen period"
    : stats.bucket === "day" ? "in the last 30 days" : "in the last 24 hours";
  const rejected = stats.errors ? `, ${stats.errors} rejected` : "";
  $("history-summary").textContent = `${plural(stats.total, "recognition")} ${period}${rejected}${filtering(params) ? " (filtered)" : ""}.`;
}

// Redraw the plots when their boxes change width (a phone turned, a window resized).
let lastWidth = 0;
new ResizeObserver(debounce(() => {
  const width = $("chart-volume").clientWidth;
  if (width && Math.abs(width - lastWidth) > 24) {
    lastWidth = width;
    drawCharts();
  }
}, 100)).observe(charts);

// ---- filters, paging, the tab ------------------------------------------------------------

async function loadModels() {
  try {
    const models = await getJSON("/v1/models");
    const select = form.elements.model;
    for (const m of models) select.add(new Option(m.name, m.name));
  } catch (err) { /* the filter keeps "any" */ }
  try { // every group the server knows, not only those seen in the plotted period
    for (const g of await getJSON("/v1/groups")) state.groups.add(g.name);
    $("group-list").replaceChildren(...[...state.groups].sort().map((name) => new Option(name.replace(/_/g, " "), name)));
  } catch (err) { /* suggestions come from the stats instead */ }
}

const reloadSoon = debounce(reload, 350);
form.addEventListener("submit", (e) => {
  e.preventDefault();
  reload();
});
form.addEventListener("reset", () => setTimeout(reload)); // after the inputs are cleared
form.addEventListener("input", (e) => {
  const name = e.target.name;
  if (name === "label" || name === "min_score") reloadSoon();
  // a group is looked up only once it is one the server named (or cleared); Enter or leaving
  // the box applies any other text, and the server then says which groups it knows
  if (name === "group" && (!e.target.value || state.groups.has(e.target.value.trim()))) reloadSoon();
});
form.addEventListener("change", (e) => {
  if (e.target.name !== "label" && e.target.name !== "min_score") reload();
});
more.addEventListener("click", () => loadMore());

new IntersectionObserver((entries) => {
  if (entries[entries.length - 1].isIntersecting && !panel.hidden) loadMore();
}, { rootMargin: "0px 0px 300px 0px" }).observe(sentinel);

function shown() {
  if (!state.started) {
    state.started = true;
    loadModels();
  }
  reload(); // each visit: the rows classified meanwhile are there
}

/** Logged out: the next user of this browser sees none of these rows, and late answers paint nothing. */
function forget() {
  state.generation += 1;
  state.cursor = null;
  state.stats = null;
  rows.replaceChildren();
  items.clear();
  showError("");
  $("history-summary").textContent = "";
  for (const box of charts.querySelectorAll(".chart-body")) box.replaceChildren();
  show(charts, false);
  updateMore();
}

document.addEventListener("recognizer:tab", (e) => e.detail === "history" && session.active && shown());
// at load (tabs.js ran first and may have shown this tab, for #history) and after each login
onSignedIn(() => !panel.hidden && shown());
onSignedOut(forget);
