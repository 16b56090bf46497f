// One chart per metric key: lazy, zoomable, live. Built on uPlot (vendor/uplot).

import uPlot from "./vendor/uplot/uPlot.esm.js";
import { getJSON } from "./api.js";
import { withAlpha } from "./colors.js";
import { h, replace, swatch } from "./dom.js";
import { formatDuration, formatNumber, toSeconds } from "./format.js";
import { appendSeries, compact, ema, emptySeries, fromApi, lastStep, nearest } from "./series.js";

/** Buckets asked for per series; about one per horizontal pixel of a wide chart. */
export const POINTS = 1000;
const REDRAW_MS = 1000;
const HEIGHT = 260;

/**
 * Settings shared by every chart of a page: the x axis ("step", "relative", "wall") and the EMA
 * smoothing weight. Charts listen and redraw.
 */
export class ChartSettings {
  constructor() {
    this.xMode = "step";
    this.smoothing = 0;
    this.listeners = new Set();
  }

  update(changes) {
    Object.assign(this, changes);
    for (const listener of this.listeners) listener();
  }
}

const observer =
  typeof IntersectionObserver === "undefined"
    ? null
    : new IntersectionObserver(
        (entries) => {
          for (const entry of entries) {
            if (entry.isIntersecting) {
              observer.unobserve(entry.target);
              entry.target.chart?.visible();
            }
          }
        },
        { rootMargin: "200px 0px" },
      );

/**
 * A chart of metric `key` over `runs` ([{id, name, color, start_time, end_time}]). It fetches
 * nothing until it scrolls into view.
 */
export class Chart {
  constructor(key, runs, settings) {
    this.key = key;
    this.runs = runs;
    this.settings = settings;
    this.series = new Map(runs.map((r) => [r.id, emptySeries()]));
    this.loaded = false;
    this.loading = null;
    this.zoom = null;
    this.logScale = false;
    this.plot = null;
    this.shape = "";
    this.lastDraw = 0;
    this.drawTimer = null;
    this.pendingLive = new Map();
    this.liveInFlight = false;

    this.logBox = h("input", { type: "checkbox", "on:change": () => this.setLog(this.logBox.checked) });
    this.status = h("span", { class: "chart-status" });
    this.plotBox = h("div", { class: "chart-plot" });
    this.hover = h("div", { class: "chart-hover", hidden: true });
    this.root = h(
      "section",
      {
        class: "chart",
        dataset: { testid: "chart", key, runIds: runs.map((r) => r.id).join(","), points: "0" },
      },
      h(
        "header",
        { class: "chart-head" },
        h("h3", { class: "chart-title", text: key }),
        this.status,
        h("label", { class: "chart-log" }, this.logBox, " log y"),
        h("button", { type: "button", class: "chart-reset", "on:click": () => this.resetZoom() }, "reset zoom"),
      ),
      this.plotBox,
      this.hover,
    );
    this.root.chart = this;
    this.plotBox.addEventListener("dblclick", () => this.resetZoom());
    settings.listeners.add(() => this.loaded && this.draw());
    if (observer) observer.observe(this.root);
    else queueMicrotask(() => this.visible());
    if (typeof ResizeObserver !== "undefined") {
      new ResizeObserver(() => {
        if (this.plot) this.plot.setSize({ width: this.width(), height: HEIGHT });
      }).observe(this.plotBox);
    }
  }

  width() {
    return Math.max(300, this.plotBox.clientWidth || 600);
  }

  /**
   * Fetch now if the chart is already on screen (or within the observer's margin), without
   * waiting a frame for the observer's first report: the first chart of a page is what its
   * reader waits for.
   */
  loadIfInView() {
    if (this.loaded || this.loading || !this.root.isConnected) return;
    const box = this.root.getBoundingClientRect();
    if (box.bottom >= -200 && box.top <= window.innerHeight + 200) {
      observer?.unobserve(this.root);
      this.visible();
    }
  }

  /** First time in view: fetch the whole range. */
  visible() {
    if (!this.loaded && !this.loading) this.load(null);
  }

  /** Fetch the full range (`zoom` null) or a window {start, end} per run, then draw. */
  async load(zoom) {
    const job = (async () => {
      this.setStatus("loading…");
      const entries = await this.fetchRange(zoom);
      const fresh = new Map(this.runs.map((r) => [r.id, emptySeries()]));
      for (const entry of entries) if (fresh.has(entry.run_id)) fresh.set(entry.run_id, fromApi(entry));
      this.series = fresh;
      this.zoom = zoom;
      this.loaded = true;
      this.setStatus("");
      this.draw();
    })();
    this.loading = job;
    try {
      await job;
    } catch (err) {
      this.setStatus(`could not load: ${err.message}`);
    } finally {
      if (this.loading === job) this.loading = null;
    }
    // Events that arrived while loading may already be covered by what was read.
    for (const [id, step] of this.pendingLive) {
      const last = lastStep(this.series.get(id));
      if (last != null && step != null && step <= last) this.pendingLive.delete(id);
    }
    if (!this.zoom && this.pendingLive.size) this.fetchLive();
  }

  async fetchRange(zoom) {
    const base = { key: this.key, points: POINTS };
    if (zoom == null) {
      const body = await getJSON("/api/series", { ...base, run: this.runs.map((r) => r.id) });
      return body.series;
    }
    // One request when every run shares the window (the step axis), else one per run.
    const groups = new Map();
    for (const r of this.runs) {
      const w = zoom.get(r.id);
      if (!w) continue;
      const id = `${w.start}:${w.end}`;
      if (!groups.has(id)) groups.set(id, { ...w, runs: [] });
      groups.get(id).runs.push(r.id);
    }
    const bodies = await Promise.all(
      [...groups.values()].map((g) =>
        getJSON("/api/series", { ...base, run: g.runs, start: g.start, end: g.end }),
      ),
    );
    return bodies.flatMap((b) => b.series);
  }

  /** A journal event said `run_id` has points up to `step` for this key. */
  onMetrics(runId, step) {
    const s = this.series.get(runId);
    if (!s) return;
    const last = lastStep(s);
    if (last != null && step != null && step <= last) return;
    this.pendingLive.set(runId, Math.max(step ?? -Infinity, this.pendingLive.get(runId) ?? -Infinity));
    // Not yet loaded: the first load reads everything. Zoomed: the window stays put, and the
    // reset reads the full range anyway.
    if (this.loaded && !this.loading && !this.zoom) this.fetchLive();
  }

  /** Fetch only what follows each pending run's last step; history is never read again. */
  async fetchLive() {
    if (this.liveInFlight) return;
    this.liveInFlight = true;
    try {
      while (this.pendingLive.size && !this.zoom && !this.loading) {
        const ids = [...this.pendingLive.keys()];
        this.pendingLive.clear();
        const byStart = new Map();
        for (const id of ids) {
          const last = lastStep(this.series.get(id));
          const start = last == null ? null : last + 1;
          const k = String(start);
          if (!byStart.has(k)) byStart.set(k, { start, runs: [] });
          byStart.get(k).runs.push(id);
        }
        const bodies = await Promise.all(
          [...byStart.values()].map((g) =>
            getJSON("/api/series", { key: this.key, points: POINTS, run: g.runs, start: g.start }),
          ),
        );
        if (this.zoom || this.loading) break;
        let added = 0;
        for (const entry of bodies.flatMap((b) => b.series)) {
          const s = this.series.get(entry.run_id);
          if (!s) continue;
          added += appendSeries(s, entry);
          compact(s, 2 * POINTS);
        }
        if (added) this.scheduleDraw();
      }
    } catch (err) {
      this.setStatus(`live update failed: ${err.message}`);
    } finally {
      this.liveInFlight = false;
    }
  }

  /** Live redraws come at most once a second per chart. */
  scheduleDraw() {
    if (this.drawTimer) return;
    const wait = Math.max(0, this.lastDraw + REDRAW_MS - performance.now());
    this.drawTimer = setTimeout(() => {
      this.drawTimer = null;
      this.draw();
    }, wait);
  }

  setLog(on) {
    this.logScale = on;
    if (this.loaded) this.draw();
  }

  resetZoom() {
    if (this.zoom) this.load(null);
  }

  setStatus(text) {
    this.status.textContent = text;
  }

  /** The x value of each entry of run `r`'s series under the current x mode. */
  xValues(r, s) {
    const mode = this.settings.xMode;
    if (mode === "step") return s.step;
    const times = s.time ?? estimateTimes(r, s);
    if (mode === "wall") return times;
    const t0 = toSeconds(r.start_time) ?? toSeconds(r.created_at) ?? times[0] ?? 0;
    return times.map((t) => (t == null ? t : t - t0));
  }

  /** Build uPlot's aligned data and series from the runs' series, then draw. */
  draw() {
    this.lastDraw = performance.now();
    const weight = this.settings.smoothing;
    const log = this.logScale;
    const clean = log ? (v) => (v != null && v > 0 ? v : null) : (v) => v;
    const tables = [];
    const series = [{}];
    const bands = [];
    this.drawn = [];
    for (const r of this.runs) {
      const s = this.series.get(r.id);
      const xs = this.xValues(r, s);
      const raw = s.value.map(clean);
      const table = [xs, raw];
      const name = r.name || r.id;
      series.push({
        label: name,
        stroke: weight > 0 ? withAlpha(r.color, 0.25) : r.color,
        width: weight > 0 ? 1 : 1.5,
      });
      if (weight > 0) {
        table.push(ema(raw, weight));
        series.push({ label: `${name} (smoothed)`, stroke: r.color, width: 1.5, points: { show: false } });
      }
      if (!s.exact && s.step.length) {
        table.push(s.max.map(clean), s.min.map(clean));
        const maxIdx = series.length;
        // Faint edges as well as the fill, so a lone spike in one bucket stays visible.
        const edge = { stroke: withAlpha(r.color, 0.3), width: 1, points: { show: false } };
        series.push({ label: `${name} max`, ...edge }, { label: `${name} min`, ...edge });
        bands.push({ series: [maxIdx, maxIdx + 1], fill: withAlpha(r.color, 0.15) });
      }
      tables.push(table);
      this.drawn.push({ run: r, xs, raw, smooth: weight > 0 ? table[2] : null });
    }
    const data = tables.length ? uPlot.join(tables) : [[]];
    const shape = JSON.stringify([this.settings.xMode, log, series.map((x) => x.label + x.stroke), bands.length]);
    if (this.plot && shape === this.shape) {
      this.plot.setData(data);
    } else {
      this.plot?.destroy();
      this.shape = shape;
      this.plot = new uPlot(this.options(series, bands), data, this.plotBox);
    }
    const empty = this.drawn.every((d) => d.xs.length === 0);
    this.setStatus(empty ? "no points" : this.zoom ? "zoomed: double-click to reset" : "");
    this.root.dataset.zoomed = this.zoom ? "true" : "false";
  }

  options(series, bands) {
    const mode = this.settings.xMode;
    const xAxis = { label: { step: "step", relative: "time since start", wall: "wall time" }[mode] };
    if (mode === "relative") xAxis.values = (u, splits) => splits.map((v) => formatDuration(v));
    if (mode !== "step" && !this.drawn.every((d) => this.series.get(d.run.id).time)) {
      xAxis.label += " (estimated)";
    }
    return {
      width: this.width(),
      height: HEIGHT,
      series,
      bands,
      legend: { show: false },
      scales: { x: { time: mode === "wall" }, y: this.logScale ? { distr: 3 } : {} },
      axes: [xAxis, this.logScale ? { size: 60 } : { values: (u, splits) => splits.map(formatNumber), size: 60 }],
      cursor: { drag: { x: true, y: false, setScale: true } },
      hooks: {
        setSelect: [(u) => this.onSelect(u)],
        setCursor: [(u) => this.onCursor(u)],
        draw: [(u) => this.onDrawn(u)],
      },
    };
  }

  /** After every draw: count the raw points inside the x range (bands and smoothing not counted). */
  onDrawn(u) {
    const { min, max } = u.scales.x;
    let n = 0;
    for (const d of this.drawn ?? []) {
      for (let i = 0; i < d.xs.length; i++) {
        const x = d.xs[i];
        if (d.raw[i] != null && x != null && (min == null || (x >= min && x <= max))) n += 1;
      }
    }
    this.root.dataset.points = String(n);
    // When the first draw happened, in ms since navigation: the browser benchmark reads it.
    if (n && !this.root.dataset.firstDrawnAt) this.root.dataset.firstDrawnAt = String(Math.round(performance.now()));
  }

  /** A drag selected an x range: uPlot zooms what it has; fetch that window at full resolution. */
  onSelect(u) {
    if (u.select.width < 3) return;
    const x0 = u.posToVal(u.select.left, "x");
    const x1 = u.posToVal(u.select.left + u.select.width, "x");
    const zoom = new Map();
    for (const d of this.drawn) {
      const s = this.series.get(d.run.id);
      let window = null;
      if (this.settings.xMode === "step") {
        window = { start: Math.ceil(x0), end: Math.floor(x1) };
      } else {
        // Time axes: the steps whose entries lie inside the selection. An entry's step is the
        // last step of its bucket, so the window starts just after the previous entry.
        const a = d.xs.findIndex((x) => x != null && x >= x0);
        let b = -1;
        for (let i = d.xs.length - 1; i >= 0; i--) {
          if (d.xs[i] != null && d.xs[i] <= x1) {
            b = i;
            break;
          }
        }
        if (a >= 0 && b >= a) {
          window = { start: a > 0 ? s.step[a - 1] + 1 : s.step[0], end: s.step[b] };
        }
      }
      if (window && window.end >= window.start) zoom.set(d.run.id, window);
    }
    if (zoom.size) this.load(zoom);
  }

  /** Hover: every run's value at the cursor, read from each run's own points. */
  onCursor(u) {
    const left = u.cursor.left;
    if (left == null || left < 0 || !this.drawn?.length) {
      this.hover.hidden = true;
      return;
    }
    const x = u.posToVal(left, "x");
    const rows = [];
    for (const d of this.drawn) {
      const i = nearest(d.xs, x);
      if (i < 0) continue;
      const s = this.series.get(d.run.id);
      const smooth = d.smooth ? ` (smoothed ${formatNumber(d.smooth[i])})` : "";
      rows.push(
        h(
          "div",
          { class: "hover-row" },
          swatch(d.run.color),
          h("span", { class: "hover-name", text: d.run.name || d.run.id }),
          h("span", { class: "hover-value", text: `${formatNumber(s.value[i])}${smooth}` }),
          h("span", { class: "hover-step", text: `step ${s.step[i]}` }),
        ),
      );
    }
    if (!rows.length) {
      this.hover.hidden = true;
      return;
    }
    // Below the plot, never over it: an element over the canvas makes headless Chromium drop
    // part of the canvas from the screen.
    replace(this.hover, rows);
    this.hover.hidden = false;
  }
}

/**
 * Wall-clock times when the server sends none per bucket: spread each run's entries linearly by
 * step between its start and its end (or now while it runs). The axis says "(estimated)".
 */
function estimateTimes(r, s) {
  const t0 = toSeconds(r.start_time) ?? toSeconds(r.created_at) ?? 0;
  const t1 = toSeconds(r.end_time) ?? Date.now() / 1000;
  const first = s.step[0];
  const span = s.step.length ? s.step[s.step.length - 1] - first : 0;
  return s.step.map((step) => (span > 0 ? t0 + ((step - first) / span) * (t1 - t0) : t0));
}
