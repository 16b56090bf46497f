// "/compare?run=A&run=B": a param diff table and every metric key overlaid, one colour per run.

import { getJSON } from "./api.js";
import { Chart, ChartSettings } from "./chart.js";
import { runColor } from "./colors.js";
import { chartToolbar } from "./controls.js";
import { h, replace, swatch } from "./dom.js";
import { formatNumber, formatValue, statusText } from "./format.js";
import { subscribe } from "./live.js";

const LIVE = new Set(["PENDING", "RUNNING"]);

/** Render the compare page into `root`. */
export async function main(root) {
  const ids = [...new Set(new URLSearchParams(location.search).getAll("run"))];
  if (!ids.length) {
    replace(root, h("p", { class: "muted", text: "Select runs on the home page to compare them." }));
    return;
  }
  let runs;
  try {
    runs = await Promise.all(ids.map((id) => getJSON(`/api/runs/${encodeURIComponent(id)}`)));
  } catch (err) {
    replace(root, h("p", { class: "error", role: "alert", text: err.message ?? String(err) }));
    return;
  }
  runs = runs.map((run, i) => ({ ...run, color: runColor(i) }));
  document.title = `compare ${runs.length} runs · runjournal`;

  const onlyDiff = h("input", {
    type: "checkbox",
    "on:change": () => table.classList.toggle("only-diff", onlyDiff.checked),
  });
  const table = diffTable(runs);
  const settings = new ChartSettings();
  const chartsBox = h("div", { class: "charts" });
  const charts = new Map();

  replace(
    root,
    h("h1", { text: `Comparing ${runs.length} runs` }),
    h(
      "ul",
      { class: "legend", "data-testid": "legend" },
      runs.map((r) =>
        h(
          "li",
          {},
          swatch(r.color),
          h("a", { href: `/runs/${encodeURIComponent(r.id)}`, text: r.name || r.id }),
          " ",
          h("span", { class: `status status-${r.status}`, text: statusText(r) }),
        ),
      ),
    ),
    h(
      "section",
      { class: "diff" },
      h("h2", { text: "Params and last metric values" }),
      h("label", {}, onlyDiff, " only differences"),
      h("div", { class: "table-wrap" }, table),
    ),
    h("section", { class: "metrics" }, h("h2", { text: "Metrics" }), chartToolbar(settings), chartsBox),
  );

  function addChart(key) {
    if (charts.has(key)) return charts.get(key);
    const chart = new Chart(key, runs, settings);
    charts.set(key, chart);
    const keys = [...charts.keys()].sort();
    const next = charts.get(keys[keys.indexOf(key) + 1]);
    chartsBox.insertBefore(chart.root, next ? next.root : null);
    return chart;
  }

  const keys = [...new Set(runs.flatMap((r) => Object.keys(r.metrics ?? {})))].sort();
  for (const key of keys) addChart(key);
  for (const chart of charts.values()) chart.loadIfInView();
  if (!keys.length) chartsBox.append(h("p", { class: "muted", text: "no metrics" }));
  document.body.dataset.ready = "true";

  if (!runs.some((r) => LIVE.has(r.status))) return;
  const known = new Set(ids);
  subscribe((type, data) => {
    if (type !== "metrics" || !known.has(data.run_id)) return;
    chartsBox.querySelector(":scope > p.muted")?.remove();
    addChart(data.key).onMetrics(data.run_id, data.last_step);
  });
}

function section(title, n) {
  return h("tr", { class: "section" }, h("th", { scope: "rowgroup", colspan: n + 1, text: title }));
}

/** Flatten nested dicts to dotted keys, so a difference deep inside a config shows on its row. */
function flatten(params, prefix = "", out = new Map()) {
  for (const [k, v] of Object.entries(params ?? {})) {
    const key = prefix + k;
    if (v !== null && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length) flatten(v, `${key}.`, out);
    else out.set(key, v);
  }
  return out;
}

function diffTable(runs) {
  const flat = runs.map((r) => flatten(r.params));
  const paramKeys = [...new Set(flat.flatMap((m) => [...m.keys()]))].sort();
  const metricKeys = [...new Set(runs.flatMap((r) => Object.keys(r.metrics ?? {})))].sort();
  const row = (label, cls, values, show) => {
    const texts = values.map((v) => (v === undefined ? undefined : JSON.stringify(v)));
    const differs = texts.some((t) => t !== texts[0]);
    return h(
      "tr",
      { class: differs ? `${cls} differs` : cls, "data-differs": differs ? "true" : "false" },
      h("th", { scope: "row", text: label }),
      values.map((v) => h("td", { class: v === undefined ? "missing" : null, text: v === undefined ? "—" : show(v) })),
    );
  };
  return h(
    "table",
    { class: "diff-table", "data-testid": "diff-table" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col", text: "" }),
        runs.map((r) => h("th", { scope: "col" }, swatch(r.color), " ", r.name || r.id)),
      ),
    ),
    h(
      "tbody",
      {},
      section("params", runs.length),
      paramKeys.map((k) => row(k, "param", flat.map((m) => (m.has(k) ? m.get(k) : undefined)), formatValue)),
      section("metrics, last value", runs.length),
      metricKeys.map((k) => row(k, "metric", runs.map((r) => r.metrics?.[k]?.last), formatNumber)),
    ),
  );
}
