// "/runs/{id}": one run's header, params, artifacts and one lazy chart per metric key.

import { ApiError, getJSON } from "./api.js";
import { Chart, ChartSettings } from "./chart.js";
import { runColor } from "./colors.js";
import { chartToolbar } from "./controls.js";
import { h, replace } from "./dom.js";
import { formatBytes, formatDuration, formatTime, formatValue, runDuration, statusText } from "./format.js";
import { subscribe } from "./live.js";

const LIVE = new Set(["PENDING", "RUNNING"]);

/** Render the run page into `root`. */
export async function main(root) {
  const runId = decodeURIComponent(location.pathname.split("/").pop());
  let run;
  try {
    run = await getJSON(`/api/runs/${encodeURIComponent(runId)}`);
  } catch (err) {
    replace(root, h("p", { class: "error", role: "alert", text: err instanceof ApiError ? err.message : String(err) }));
    return;
  }
  document.title = `${run.name || run.id} · runjournal`;
  const header = h("header", { class: "run-header" });
  const paramsBox = h("section", { class: "params" });
  const artifactsBox = h("section", { class: "artifacts" });
  const settings = new ChartSettings();
  const chartsBox = h("div", { class: "charts" });
  const charts = new Map();

  replace(
    root,
    header,
    h("div", { class: "run-columns" }, paramsBox, artifactsBox),
    h("section", { class: "metrics" }, h("h2", { text: "Metrics" }), chartToolbar(settings), chartsBox),
  );

  const runEntry = () => ({ ...run, color: runColor(0) });

  function render() {
    renderHeader(header, run);
    replace(paramsBox, h("h2", { text: "Params" }), paramTree(run.params ?? {}));
    renderArtifacts(artifactsBox, run.artifacts ?? []);
  }

  function addChart(key) {
    if (charts.has(key)) return charts.get(key);
    const chart = new Chart(key, [runEntry()], settings);
    charts.set(key, chart);
    const keys = [...charts.keys()].sort();
    const next = charts.get(keys[keys.indexOf(key) + 1]);
    chartsBox.insertBefore(chart.root, next ? next.root : null);
    return chart;
  }

  render();
  nameExperiment(header, run.experiment_id);
  const keys = Object.keys(run.metrics ?? {}).sort();
  for (const key of keys) addChart(key);
  for (const chart of charts.values()) chart.loadIfInView();
  if (!keys.length) chartsBox.append(h("p", { class: "muted", text: "no metrics" }));
  document.body.dataset.ready = "true";

  if (!LIVE.has(run.status)) return;
  let refresh = null;
  subscribe((type, data) => {
    if (data.run_id !== run.id) return;
    if (type === "metrics") {
      chartsBox.querySelector(":scope > p.muted")?.remove();
      addChart(data.key).onMetrics(run.id, data.last_step);
    }
    // Status, tags, span id and artifacts are small: read the run again, at most once a second.
    if (refresh) return;
    refresh = setTimeout(async () => {
      refresh = null;
      try {
        run = await getJSON(`/api/runs/${encodeURIComponent(run.id)}`);
        render();
      } catch {
        // Keep what is shown; the next event tries again.
      }
    }, 1000);
  });
}

const experimentNames = new Map();

/** Show the experiment's name instead of its id once it is known. */
async function nameExperiment(header, experimentId) {
  try {
    for (const e of await getJSON("/api/experiments")) experimentNames.set(e.id, e.name);
  } catch {
    return;
  }
  const link = header.querySelector("[data-testid=experiment-name]");
  if (link && experimentNames.has(experimentId)) link.textContent = experimentNames.get(experimentId);
}

function renderHeader(header, run) {
  const fact = (label, value, testid) =>
    h("div", { class: "fact" }, h("dt", { text: label }), h("dd", { "data-testid": testid ?? null }, value));
  const tags = Object.entries(run.tags ?? {});
  replace(
    header,
    h(
      "div",
      { class: "run-title" },
      h("h1", { "data-testid": "run-name", text: run.name || run.id }),
      h("span", { class: `status status-${run.status}`, "data-testid": "run-status", text: statusText(run) }),
    ),
    h(
      "dl",
      { class: "facts" },
      fact("id", h("code", { text: run.id })),
      fact(
        "experiment",
        h("a", {
          href: `/?experiment=${encodeURIComponent(run.experiment_id)}`,
          "data-testid": "experiment-name",
          text: experimentNames.get(run.experiment_id) ?? run.experiment_id,
        }),
      ),
      fact("created", formatTime(run.created_at)),
      fact("started", formatTime(run.start_time)),
      fact("ended", formatTime(run.end_time)),
      fact("duration", formatDuration(runDuration(run))),
      fact("span id", run.span_id == null ? "—" : h("code", { text: run.span_id }), "span-id"),
      fact(
        "tags",
        tags.length
          ? tags.map(([k, v]) => h("span", { class: "tag", "data-testid": "tag" }, h("b", { text: k }), "=", v))
          : "—",
      ),
    ),
  );
}

/** Params as a tree: nested dicts and lists open as <details>, leaves show their JSON type. */
export function paramTree(params) {
  const entries = Object.entries(params).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  if (!entries.length) return h("p", { class: "muted", text: "no params" });
  return h("ul", { class: "tree", "data-testid": "params" }, entries.map(([k, v]) => treeNode(k, v)));
}

function treeNode(key, value) {
  if (value !== null && typeof value === "object") {
    const items = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
    const kind = Array.isArray(value) ? `[${items.length}]` : `{${items.length}}`;
    return h(
      "li",
      {},
      h(
        "details",
        { open: items.length <= 8 },
        h("summary", {}, h("span", { class: "key", text: key }), " ", h("span", { class: "muted", text: kind })),
        h("ul", { class: "tree" }, items.map(([k, v]) => treeNode(k, v))),
      ),
    );
  }
  const type = value === null ? "null" : typeof value;
  return h(
    "li",
    {},
    h("span", { class: "key", text: key }),
    ": ",
    h("span", { class: `value value-${type}`, text: type === "string" ? value : formatValue(value) }),
  );
}

function renderArtifacts(box, artifacts) {
  replace(
    box,
    h("h2", { text: "Artifacts" }),
    artifacts.length
      ? h(
          "table",
          { class: "artifacts-table" },
          h("thead", {}, h("tr", {}, ["name", "size", "sha256", "created"].map((t) => h("th", { scope: "col", text: t })))),
          h(
            "tbody",
            {},
            artifacts.map((a) =>
              h(
                "tr",
                {},
                h("td", {}, h("a", { href: `/api/artifacts/${encodeURIComponent(a.sha256)}`, download: a.name, text: a.name })),
                h("td", { class: "num" }, formatBytes(a.size_bytes)),
                h("td", {}, h("code", { title: a.sha256, text: a.sha256.slice(0, 12) })),
                h("td", { class: "time" }, formatTime(a.created_at)),
              ),
            ),
          ),
        )
      : h("p", { class: "muted", text: "no artifacts" }),
  );
}
