// "/": the experiments and one run table over all of them.

import { ApiError, getJSON, url } from "./api.js";
import { h, replace } from "./dom.js";
import { formatDuration, formatNumber, formatTime, formatValue, runDuration, statusText } from "./format.js";
import { subscribe } from "./live.js";

const PAGE_SIZE = 100;
const DEFAULT_PARAMS = 4;
const DEFAULT_METRICS = 4;
const REFRESH_MS = 2000;

/** The table's state; everything but paging and selection lives in the address bar. */
function readState() {
  const q = new URLSearchParams(location.search);
  return {
    experiment: q.get("experiment"),
    filters: q.getAll("filter"),
    sort: q.get("sort") ?? "created_at",
    desc: q.has("desc") ? q.get("desc") === "true" : true,
    params: q.has("p") ? q.getAll("p").filter(Boolean) : null,
    metrics: q.has("m") ? q.getAll("m").filter(Boolean) : null,
  };
}

function writeState(state) {
  const q = {
    experiment: state.experiment,
    filter: state.filters,
    sort: state.sort === "created_at" ? null : state.sort,
    desc: state.desc ? null : "false",
    p: state.params == null ? null : state.params.length ? state.params : [""],
    m: state.metrics == null ? null : state.metrics.length ? state.metrics : [""],
  };
  history.replaceState(null, "", url("/", q));
}

/** Render the home page into `root`. */
export async function main(root) {
  const state = readState();
  const selected = new Set();
  let cursors = [null];
  let experiments = new Map();
  let page = { runs: [], next: null, total: 0 };
  let paramKeys = [];
  let metricKeys = [];

  const expList = h("ul", { class: "experiments" });
  const filterInput = h("input", {
    type: "search",
    class: "filter-input",
    placeholder: "filter: learning_rate<1e-3, optimizer=adamw … (Enter adds)",
    "aria-label": "filter",
  });
  const chips = h("span", { class: "chips" });
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const columns = h("div", { class: "column-picker" });
  const compareLink = h("a", { class: "button compare-link", href: "#", "aria-disabled": "true" }, "compare");
  const table = h("table", { class: "runs", "data-testid": "run-table" });
  const pager = h("nav", { class: "pager" });

  replace(
    root,
    h("aside", { class: "sidebar" }, h("h2", { text: "Experiments" }), expList),
    h(
      "section",
      { class: "content" },
      h(
        "div",
        { class: "toolbar" },
        h("form", { class: "filter-form", "on:submit": onFilterSubmit }, filterInput, chips),
        h("details", { class: "columns" }, h("summary", { text: "columns" }), columns),
        compareLink,
      ),
      error,
      h("div", { class: "table-wrap" }, table),
      pager,
    ),
  );

  function onFilterSubmit(event) {
    event.preventDefault();
    const text = filterInput.value.trim();
    if (!text) return;
    state.filters.push(text);
    filterInput.value = "";
    restart();
  }

  function restart() {
    cursors = [null];
    pages.clear();
    writeState(state);
    load(null);
  }

  function renderChips() {
    replace(
      chips,
      state.filters.map((f, i) =>
        h(
          "span",
          { class: "chip", "data-testid": "filter-chip" },
          f,
          h(
            "button",
            {
              type: "button",
              "aria-label": "remove filter",
              "on:click": () => {
                state.filters.splice(i, 1);
                restart();
              },
            },
            "×",
          ),
        ),
      ),
    );
  }

  function renderExperiments() {
    const all = [...experiments.values()];
    const total = all.reduce((n, e) => n + (e.run_count ?? 0), 0);
    const item = (id, label, count, description) =>
      h(
        "li",
        { class: state.experiment === id ? "current" : null },
        h(
          "a",
          {
            href: url("/", { experiment: id }),
            "data-testid": "experiment-link",
            "on:click": (event) => {
              event.preventDefault();
              state.experiment = id;
              renderExperiments();
              restart();
            },
          },
          h("span", { class: "exp-name", text: label }),
          h("span", { class: "count", text: String(count) }),
        ),
        description ? h("p", { class: "exp-description", text: description }) : null,
      );
    replace(
      expList,
      item(null, "All experiments", total, null),
      all.map((e) => item(e.id, e.name, e.run_count ?? 0, e.description)),
    );
  }

  // Pages by their query: the next page is fetched while the reader looks at this one, so
  // "next" draws at once; a filter, sort or live change empties it.
  const pages = new Map();
  let loads = 0;

  function query(cursor) {
    return {
      experiment: state.experiment,
      filter: state.filters,
      sort: state.sort,
      desc: state.desc,
      limit: PAGE_SIZE,
      cursor,
    };
  }

  function fetchPage(cursor) {
    const params = query(cursor);
    const key = url("/api/runs", params);
    let pending = pages.get(key);
    if (!pending) {
      pending = getJSON("/api/runs", params);
      pages.set(key, pending);
      pending.catch(() => pages.delete(key));
      while (pages.size > 4) pages.delete(pages.keys().next().value);
    }
    return pending;
  }

  /** Show the page at `cursor`; a click that comes while a page loads wins over it. */
  async function load(cursor, fetched = fetchPage(cursor)) {
    const mine = ++loads;
    // Until this page is drawn, "next" would name the page after the one on screen.
    for (const button of pager.querySelectorAll("button")) button.disabled = true;
    error.hidden = true;
    renderChips();
    let next;
    try {
      next = await fetched;
    } catch (err) {
      if (mine !== loads) return;
      next = { runs: [], next: null, total: 0 };
      error.textContent = err instanceof ApiError ? `${err.code}: ${err.message}` : String(err);
      error.hidden = false;
    }
    if (mine !== loads) return;
    page = next;
    pickDefaults();
    renderColumns();
    renderTable();
    renderPager();
    if (page.next != null) fetchPage(page.next).catch(() => {});
  }

  /** Keys seen on this page, most common first; the first few are shown unless the user picked. */
  function pickDefaults() {
    const count = (get) => {
      const n = new Map();
      for (const run of page.runs) for (const k of Object.keys(get(run) ?? {})) n.set(k, (n.get(k) ?? 0) + 1);
      return [...n.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map((e) => e[0]);
    };
    paramKeys = count((r) => r.params);
    metricKeys = count((r) => r.metrics);
  }

  function shownParams() {
    return state.params ?? paramKeys.slice(0, DEFAULT_PARAMS);
  }

  function shownMetrics() {
    return state.metrics ?? metricKeys.slice(0, DEFAULT_METRICS);
  }

  function renderColumns() {
    const group = (title, keys, shown, field) =>
      h(
        "fieldset",
        {},
        h("legend", { text: title }),
        keys.length ? null : h("p", { class: "muted", text: "none on this page" }),
        [...new Set([...shown, ...keys])].map((k) => {
          const box = h("input", {
            type: "checkbox",
            checked: shown.includes(k),
            "on:change": () => {
              const current = new Set(field === "params" ? shownParams() : shownMetrics());
              if (box.checked) current.add(k);
              else current.delete(k);
              state[field] = [...current];
              writeState(state);
              renderColumns();
              renderTable();
            },
          });
          return h("label", {}, box, " ", k);
        }),
      );
    replace(
      columns,
      group("params", paramKeys, shownParams(), "params"),
      group("metrics (last value)", metricKeys, shownMetrics(), "metrics"),
    );
  }

  function sortHeader(label, key, cls) {
    if (key == null) return h("th", { class: cls, scope: "col", text: label });
    const active = state.sort === key;
    const th = h(
      "th",
      {
        class: `${cls ?? ""} sortable${active ? " sorted" : ""}`,
        scope: "col",
        "aria-sort": active ? (state.desc ? "descending" : "ascending") : null,
        "data-sort": key,
      },
      h(
        "button",
        {
          type: "button",
          "on:click": () => {
            if (state.sort === key) state.desc = !state.desc;
            else {
              state.sort = key;
              state.desc = false;
            }
            restart();
          },
        },
        label,
        active ? (state.desc ? " ▼" : " ▲") : null,
      ),
    );
    return th;
  }

  function renderTable() {
    const params = shownParams();
    const metrics = shownMetrics();
    const head = h(
      "tr",
      {},
      h("th", { class: "select", scope: "col" }, h("span", { class: "visually-hidden", text: "select" })),
      sortHeader("status", "status"),
      sortHeader("name", "name"),
      sortHeader("experiment", null),
      sortHeader("created", "created_at"),
      sortHeader("duration", null),
      params.map((k) => sortHeader(k, `param:${k}`, "param")),
      metrics.map((k) => sortHeader(k, `metric:${k}`, "metric")),
    );
    const rows = page.runs.map((run) => {
      const box = h("input", {
        type: "checkbox",
        "aria-label": "select for comparison",
        checked: selected.has(run.id),
        "on:change": () => {
          if (box.checked) selected.add(run.id);
          else selected.delete(run.id);
          renderCompareLink();
        },
      });
      const exp = experiments.get(run.experiment_id);
      return h(
        "tr",
        { "data-testid": "run-row", "data-run-id": run.id },
        h("td", { class: "select" }, box),
        h("td", {}, h("span", { class: `status status-${run.status}`, text: statusText(run) })),
        h("td", { class: "name" }, h("a", { href: `/runs/${encodeURIComponent(run.id)}`, text: run.name || run.id })),
        h("td", { class: "experiment" }, exp ? exp.name : run.experiment_id),
        h("td", { class: "time" }, formatTime(run.created_at)),
        h("td", { class: "num" }, formatDuration(runDuration(run))),
        params.map((k) => h("td", { class: "param" }, formatValue(run.params?.[k]))),
        metrics.map((k) => h("td", { class: "num" }, formatNumber(run.metrics?.[k]?.last))),
      );
    });
    replace(
      table,
      h("thead", {}, head),
      h(
        "tbody",
        {},
        rows.length
          ? rows
          : h("tr", {}, h("td", { colspan: 6 + params.length + metrics.length, class: "muted", text: "no runs" })),
      ),
    );
  }

  function renderPager() {
    const index = cursors.length - 1;
    const first = page.runs.length ? index * PAGE_SIZE + 1 : 0;
    const last = index * PAGE_SIZE + page.runs.length;
    replace(
      pager,
      h("button", {
        type: "button",
        text: "‹ previous",
        disabled: index === 0,
        "on:click": () => {
          cursors.pop();
          load(cursors[cursors.length - 1]);
        },
      }),
      h("span", { class: "range", "data-testid": "run-range", text: `runs ${first}–${last} of ${page.total}` }),
      h("button", {
        type: "button",
        text: "next ›",
        disabled: page.next == null,
        "on:click": () => {
          cursors.push(page.next);
          load(page.next);
        },
      }),
    );
  }

  function renderCompareLink() {
    const ids = [...selected];
    compareLink.textContent = `compare (${ids.length})`;
    if (ids.length >= 2) {
      compareLink.href = url("/compare", { run: ids });
      compareLink.removeAttribute("aria-disabled");
    } else {
      compareLink.href = "#";
      compareLink.setAttribute("aria-disabled", "true");
    }
  }

  compareLink.addEventListener("click", (event) => {
    if (compareLink.getAttribute("aria-disabled")) event.preventDefault();
  });

  // The experiments and the first page at once: neither needs the other's answer.
  const firstPage = fetchPage(null);
  try {
    const list = await getJSON("/api/experiments");
    experiments = new Map(list.map((e) => [e.id, e]));
  } catch (err) {
    error.textContent = String(err.message ?? err);
    error.hidden = false;
  }
  renderExperiments();
  renderCompareLink();
  await load(null, firstPage);
  document.body.dataset.ready = "true";

  // New runs and status changes show up without a reload; a burst of events costs one refresh.
  let timer = null;
  subscribe((type) => {
    if (type === "metrics" || timer) return;
    timer = setTimeout(async () => {
      timer = null;
      try {
        const list = await getJSON("/api/experiments");
        experiments = new Map(list.map((e) => [e.id, e]));
        renderExperiments();
      } catch {
        // The table refresh below reports errors.
      }
      pages.clear();
      load(cursors[cursors.length - 1]);
    }, REFRESH_MS);
  });
}
