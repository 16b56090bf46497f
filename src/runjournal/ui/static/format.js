// Formatting values for display. Returns plain strings; callers put them in text nodes.

/** Seconds since the epoch from the API's time values (numbers, or ISO strings). */
export function toSeconds(t) {
  if (t == null) return null;
  if (typeof t === "number") return t;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? null : ms / 1000;
}

const pad = (n) => String(n).padStart(2, "0");

/** A local date and time, "2026-11-26 10:04:05". */
export function formatTime(t) {
  const s = toSeconds(t);
  if (s == null) return "—";
  const d = new Date(s * 1000);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}

/** A duration in seconds as "1h 02m", "3m 05s" or "4.2s". */
export function formatDuration(seconds) {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return "—";
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m}m ${pad(Math.floor(seconds % 60))}s`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs}h ${pad(m % 60)}m`;
  return `${Math.floor(hrs / 24)}d ${pad(hrs % 24)}h`;
}

/** A run's status, with how long a stale run has been silent: "RUNNING (no activity for 12 min)". */
export function statusText(run) {
  if (run.stale_for == null) return run.status;
  const minutes = Math.floor(run.stale_for / 60);
  const idle = minutes < 120 ? `${minutes} min` : `${Math.floor(minutes / 60)} h`;
  return `${run.status} (no activity for ${idle})`;
}

/** How long a run ran, or has been running. */
export function runDuration(run) {
  const start = toSeconds(run.start_time);
  if (start == null) return null;
  const end = toSeconds(run.end_time) ?? Date.now() / 1000;
  return end - start;
}

/** A metric value: short, but exact enough to tell close values apart. */
export function formatNumber(v) {
  if (v == null) return "—";
  if (typeof v !== "number") return String(v);
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return Number(v.toPrecision(5)).toExponential();
  return String(Number(v.toPrecision(6)));
}

/** A parameter value of any JSON type, on one line. */
export function formatValue(v) {
  if (v === undefined) return "";
  if (v === null) return "null";
  if (typeof v === "number") return formatNumber(v);
  if (typeof v === "string") return v;
  return JSON.stringify(v);
}

/** A byte count, "1.2 MB". */
export function formatBytes(n) {
  if (n == null) return "—";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  let x = n;
  while (x >= 1000 && i < units.length - 1) {
    x /= 1000;
    i += 1;
  }
  return i === 0 ? `${x} B` : `${x.toFixed(1)} ${units[i]}`;
}
