// Small SVG charts for the History tab, drawn by hand (no library, nothing fetched):
// stacked columns over time, lines over time, horizontal bars. Each chart is one <svg> whose
// viewBox is as wide as its box in CSS pixels, so text stays 12px and the drawing scales with
// the page; <title>/<desc> name and summarise it, and every bar or point carries a <title>
// tooltip. Colours come from app.css (classes ok, err, p50, p95, group): Okabe–Ito hues.
const NS = "http://www.w3.org/2000/svg";
const FONT = 12;
let serial = 0;

export function svgEl(name, attrs = {}, ...children) {
  const node = document.createElementNS(NS, name);
  for (const [key, value] of Object.entries(attrs)) if (value != null) node.setAttribute(key, String(value));
  node.append(...children);
  return node;
}

const tooltip = (text) => svgEl("title", {}, text);
const round = (value) => Math.round(value * 10) / 10;

function frame(width, height, title, desc) {
  const id = `chart-${++serial}`;
  return svgEl(
    "svg",
    { class: "chart-svg", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": `${id}-t ${id}-d` },
    svgEl("title", { id: `${id}-t` }, title),
    svgEl("desc", { id: `${id}-d` }, desc),
  );
}

function emptyText(svg, x, y, text) {
  svg.append(svgEl("text", { class: "empty-text", x: round(x), y: round(y), "text-anchor": "middle" }, text));
}

/** Round numbers for an axis from 0 to at least `max` (1, 2, 2.5 or 5 times a power of ten apart). */
export function ticks(max, count = 4, integer = false) {
  if (!(max > 0)) max = integer ? count : 1;
  const raw = max / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 2.5, 5, 10].map((m) => Number((m * magnitude).toPrecision(12))).find((s) => s >= raw);
  if (integer) step = Math.max(1, Math.ceil(step));
  const steps = Math.ceil(max / step - 1e-9);
  const values = Array.from({ length: steps + 1 }, (_, i) => Number((i * step).toPrecision(12)));
  const decimals = String(step).includes(".") ? String(step).split(".")[1].length : 0;
  return { top: values[values.length - 1], values, decimals };
}

/** Shared frame for time charts: y grid and labels, axis titles, band geometry along x. */
function timeAxes(svg, { width, height, margin, scale, yLabel, xLabel, bands }) {
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const y = (value) => margin.top + plotH - (value / scale.top) * plotH;
  for (const value of scale.values) {
    const at = round(y(value));
    svg.append(
      svgEl("line", { class: value === 0 ? "axis" : "grid", x1: margin.left, x2: width - margin.right, y1: at, y2: at }),
      svgEl("text", { class: "tick", x: margin.left - 6, y: at, dy: "0.32em", "text-anchor": "end" }, value.toFixed(scale.decimals)),
    );
  }
  const step = plotW / Math.max(1, bands.length);
  const widest = Math.max(1, ...bands.map((b) => (b.tick || "").length)) * FONT * 0.6 + 14; // a tick label's room
  const needed = Math.ceil(bands.length / Math.max(1, Math.floor(plotW / widest)));
  const every = [1, 2, 3, 4, 6, 12, 24, 48, 96, 168, 336, 720].find((n) => n >= needed) || needed;
  bands.forEach((band, i) => {
    // band.order (the hour of the day, the day number) puts ticks on round hours, not every nth band
    if ((band.order ?? i) % every || !band.tick) return;
    const x = round(margin.left + (i + 0.5) * step);
    const half = band.tick.length * FONT * 0.3; // keep the label inside the drawing at either end
    const textX = round(Math.min(Math.max(x, half + 2), width - half - 2));
    svg.append(
      svgEl("line", { class: "axis", x1: x, x2: x, y1: margin.top + plotH, y2: margin.top + plotH + 4 }),
      svgEl("text", { class: "tick", x: textX, y: margin.top + plotH + 6 + FONT, "text-anchor": "middle" }, band.tick),
    );
  });
  svg.append(
    svgEl("text", { class: "axis-title", x: round(margin.left + plotW / 2), y: height - 4, "text-anchor": "middle" }, xLabel),
    svgEl(
      "text",
      { class: "axis-title", transform: `translate(${FONT + 1} ${round(margin.top + plotH / 2)}) rotate(-90)`, "text-anchor": "middle" },
      yLabel,
    ),
  );
  return { y, step, plotW, plotH };
}

function legend(svg, x, items) {
  let at = x;
  for (const [cls, text, shape] of items) {
    const mark =
      shape === "line"
        ? svgEl("line", { class: `line ${cls}`, x1: at, x2: at + 14, y1: 10, y2: 10 })
        : svgEl("rect", { class: `swatch ${cls}`, x: at, y: 4, width: 12, height: 12, rx: 2 });
    svg.append(mark, svgEl("text", { class: "legend", x: at + 18, y: 10, dy: "0.32em" }, text));
    at += 18 + text.length * 6.6 + 14;
  }
}

/**
 * Columns over time, each split in two stacked parts (`count - errors` below, `errors` on top).
 * bands: [{count, errors, tick, tip}], one per bucket, empty buckets included.
 */
export function columns(container, { width, title, desc, bands, yLabel, xLabel, empty, parts }) {
  const height = 240;
  const margin = { top: 26, right: 12, bottom: 42, left: 46 };
  const svg = frame(width, height, title, desc);
  const max = Math.max(0, ...bands.map((b) => b.count));
  const scale = ticks(max, 4, true);
  const { y, step, plotW, plotH } = timeAxes(svg, { width, height, margin, scale, yLabel, xLabel, bands });
  const barW = Math.max(1, step * 0.78);
  bands.forEach((band, i) => {
    const x0 = margin.left + i * step;
    const group = svgEl("g", { class: "band", "data-count": band.count, "data-errors": band.errors });
    group.append(svgEl("rect", { class: "hit", x: round(x0), y: margin.top, width: round(step), height: plotH }, tooltip(band.tip)));
    const ok = band.count - band.errors;
    const x = round(x0 + (step - barW) / 2);
    if (ok > 0) {
      group.append(svgEl("rect", { class: "bar ok", x, y: round(y(ok)), width: round(barW), height: round(y(0) - y(ok)) }, tooltip(band.tip)));
    }
    if (band.errors > 0) {
      const top = round(y(band.count));
      group.append(svgEl("rect", { class: "bar err", x, y: top, width: round(barW), height: round(y(ok) - y(band.count)) }, tooltip(band.tip)));
    }
    svg.append(group);
  });
  legend(svg, margin.left, [["ok", parts[0]], ["err", parts[1]]]);
  if (max === 0) emptyText(svg, margin.left + plotW / 2, margin.top + plotH / 2, empty);
  container.replaceChildren(svg);
}

/**
 * Lines over time, broken where a bucket has no value; a dot (with its tooltip) on every value.
 * bands: [{tick, tip, values: {key: number} | null}]; series: [{key, name, cls}].
 */
export function lines(container, { width, title, desc, bands, series, yLabel, xLabel, empty, unit }) {
  const height = 240;
  const margin = { top: 26, right: 12, bottom: 42, left: 46 };
  const svg = frame(width, height, title, desc);
  const values = bands.flatMap((b) => (b.values ? series.map((s) => b.values[s.key]) : [])).filter(Number.isFinite);
  const scale = ticks(Math.max(0, ...values), 4, false);
  const { y, step, plotW, plotH } = timeAxes(svg, { width, height, margin, scale, yLabel, xLabel, bands });
  const x = (i) => round(margin.left + (i + 0.5) * step);
  for (const s of series) {
    let path = "";
    let previous = false;
    const dots = svgEl("g", { class: `dots ${s.cls}` });
    bands.forEach((band, i) => {
      const value = band.values ? band.values[s.key] : null;
      if (!Number.isFinite(value)) {
        previous = false;
        return;
      }
      path += `${previous ? "L" : "M"}${x(i)} ${round(y(value))}`;
      previous = true;
      dots.append(
        svgEl("circle", { class: `dot ${s.cls}`, cx: x(i), cy: round(y(value)), r: 3.5 }, tooltip(`${band.tip}: ${s.name} ${value.toFixed(1)} ${unit}`)),
      );
    });
    if (path) svg.append(svgEl("path", { class: `line ${s.cls}`, d: path }));
    svg.append(dots);
  }
  legend(svg, margin.left, series.map((s) => [s.cls, s.name, "line"]));
  if (!values.length) emptyText(svg, margin.left + plotW / 2, margin.top + plotH / 2, empty);
  container.replaceChildren(svg);
}

/** Horizontal bars, largest first, the count written after each bar. rows: [{name, count, tip}]. */
export function hbars(container, { width, title, desc, rows, empty, cls }) {
  const rowH = 26;
  const height = rows.length ? rows.length * rowH + 12 : 120;
  const svg = frame(width, height, title, desc);
  if (!rows.length) {
    emptyText(svg, width / 2, height / 2, empty);
    container.replaceChildren(svg);
    return;
  }
  const longest = Math.max(...rows.map((r) => r.name.length));
  const labelW = Math.min(200, Math.round(width * 0.42), Math.round(longest * FONT * 0.6 + 14));
  const barMax = width - labelW - 8 - 46;
  const max = Math.max(...rows.map((r) => r.count));
  const maxChars = Math.max(4, Math.floor((labelW - 10) / 6.6));
  rows.forEach((row, i) => {
    const top = 6 + i * rowH;
    const length = Math.max(2, (row.count / max) * barMax);
    const name = row.name.length > maxChars ? `${row.name.slice(0, maxChars - 1)}…` : row.name;
    svg.append(
      svgEl(
        "g",
        { class: "hrow", "data-count": row.count },
        svgEl("text", { class: "name", x: labelW - 8, y: top + rowH / 2 - 1, dy: "0.32em", "text-anchor": "end" }, name, tooltip(row.name)),
        svgEl("rect", { class: `bar ${cls}`, x: labelW, y: top + 3, width: round(length), height: rowH - 8, rx: 2 }, tooltip(row.tip)),
        svgEl("text", { class: "count", x: round(labelW + length + 5), y: top + rowH / 2 - 1, dy: "0.32em" }, String(row.count)),
      ),
    );
  });
  container.replaceChildren(svg);
}
