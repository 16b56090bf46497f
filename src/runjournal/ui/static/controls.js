// The chart toolbar shared by the run and compare pages: x axis and smoothing.

import { h } from "./dom.js";

/** Controls that update `settings` (a ChartSettings); every chart on the page follows them. */
export function chartToolbar(settings) {
  const xSelect = h(
    "select",
    {
      "aria-label": "x axis",
      "data-testid": "x-mode",
      "on:change": () => settings.update({ xMode: xSelect.value }),
    },
    h("option", { value: "step", text: "step" }),
    h("option", { value: "relative", text: "relative time" }),
    h("option", { value: "wall", text: "wall time" }),
  );
  const readout = h("output", { class: "smoothing-value", text: "0" });
  const slider = h("input", {
    type: "range",
    min: "0",
    max: "0.99",
    step: "0.01",
    value: "0",
    "aria-label": "smoothing",
    "data-testid": "smoothing",
    "on:input": () => {
      readout.textContent = slider.value;
      settings.update({ smoothing: Number(slider.value) });
    },
  });
  return h(
    "div",
    { class: "chart-toolbar" },
    h("label", {}, "x axis ", xSelect),
    h("label", {}, "smoothing ", slider, readout),
    h("span", { class: "muted hint", text: "drag to zoom · double-click to reset" }),
  );
}
