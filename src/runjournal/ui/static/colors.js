// One colour per run, kept by the run's position on the page: table swatch, legend and lines agree.

const PALETTE = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
];

/** The colour of the run at `index` in the page's list of runs. */
export function runColor(index) {
  return PALETTE[index % PALETTE.length];
}

/** The same colour with an alpha, for faint raw curves and min/max bands. */
export function withAlpha(hex, alpha) {
  const n = Number.parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}
