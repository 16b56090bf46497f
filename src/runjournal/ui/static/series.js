// Pure helpers over one run's series as /api/series sends it: appending, compacting, smoothing.

/** An empty series state. */
export function emptySeries() {
  return { step: [], value: [], min: [], max: [], time: null, exact: true, total: 0 };
}

/** A series state from one entry of /api/series (`time` is used when the server sends it). */
export function fromApi(entry) {
  return {
    step: entry.step.slice(),
    value: entry.value.slice(),
    min: (entry.min ?? entry.value).slice(),
    max: (entry.max ?? entry.value).slice(),
    time: Array.isArray(entry.time) ? entry.time.slice() : null,
    exact: entry.exact !== false,
    total: entry.total ?? entry.step.length,
  };
}

/** The last step held, or null. */
export function lastStep(s) {
  return s.step.length ? s.step[s.step.length - 1] : null;
}

/** Append the entry of a range that starts after `s` ends (live points), in place. */
export function appendSeries(s, entry) {
  const more = fromApi(entry);
  if (!more.step.length) return 0;
  s.step.push(...more.step);
  s.value.push(...more.value);
  s.min.push(...more.min);
  s.max.push(...more.max);
  if (s.time && more.time) s.time.push(...more.time);
  else s.time = null;
  s.exact = s.exact && more.exact;
  s.total += more.total;
  return more.step.length;
}

const lo = (a, b) => (a == null ? b : b == null ? a : Math.min(a, b));
const hi = (a, b) => (a == null ? b : b == null ? a : Math.max(a, b));

/**
 * Halve the number of entries once it passes `limit`, merging neighbours the way the server's
 * buckets combine (last step and value, min of mins, max of maxes), so a page left open on a long
 * live run stays light and still shows every spike. The first entry stays alone.
 */
export function compact(s, limit) {
  if (s.step.length <= limit) return;
  const out = { step: [s.step[0]], value: [s.value[0]], min: [s.min[0]], max: [s.max[0]] };
  const time = s.time ? [s.time[0]] : null;
  for (let i = 1; i < s.step.length; i += 2) {
    const j = Math.min(i + 1, s.step.length - 1);
    out.step.push(s.step[j]);
    out.value.push(s.value[j]);
    out.min.push(j === i ? s.min[i] : lo(s.min[i], s.min[j]));
    out.max.push(j === i ? s.max[i] : hi(s.max[i], s.max[j]));
    if (time) time.push(s.time[j]);
  }
  Object.assign(s, out, { time, exact: false });
}

/**
 * Exponential moving average with TensorBoard's debiasing, `weight` in [0, 1). Nulls (NaN and
 * infinities on the server) stay gaps and do not reset the average.
 */
export function ema(values, weight) {
  const out = new Array(values.length);
  let acc = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v == null) {
      out[i] = v;
      continue;
    }
    acc = acc * weight + (1 - weight) * v;
    n += 1;
    out[i] = acc / (1 - weight ** n);
  }
  return out;
}

/** The index in the ascending array `xs` nearest to `x`, or -1 when empty. */
export function nearest(xs, x) {
  if (!xs.length) return -1;
  let a = 0;
  let b = xs.length - 1;
  while (b - a > 1) {
    const m = (a + b) >> 1;
    if (xs[m] < x) a = m;
    else b = m;
  }
  return Math.abs(xs[a] - x) <= Math.abs(xs[b] - x) ? a : b;
}
