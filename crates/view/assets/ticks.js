// Ticks a reader expects: values at round steps (1, 2, 5 times a power of ten), times at round
// seconds, minutes, hours, days or months, with the date written once and again where it
// changes. Pure functions of numbers: the page decides where they go.

// The 1-2-5 step that gives about `most` intervals over `span` (at most 1.4 times as many).
export function niceStep(span, most) {
  if (!(span > 0) || !isFinite(span)) return 1;
  const raw = span / Math.max(1, most) / 1.4;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw * (1 - 1e-9)) return m * p;
  return 10 * p;
}

// Decimals that print every multiple of `step` exactly (0.25 -> 2, 500 -> 0).
export function decimalsOf(step) {
  let d = 0;
  while (d < 12 && Math.abs(Math.round(step * 10 ** d) - step * 10 ** d) > 1e-6 * step * 10 ** d) d++;
  return d;
}

// Multiples of a nice step within [a, b] (either order), at most about `most` + 1 of them.
export function niceTicks(a, b, most) {
  const lo = Math.min(a, b), hi = Math.max(a, b);
  if (!(hi > lo)) return { step: 0, values: isFinite(lo) ? [lo] : [] };
  const step = niceStep(hi - lo, most);
  const out = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) out.push(+(k * step).toFixed(decimalsOf(step)));
  return { step, values: out };
}

// A number as a tick label with the decimals of its step.
export function formatTick(v, step) {
  if (step && Math.abs(step) >= 1e-4 && Math.abs(v) < 1e9) return (Math.abs(v) < step * 1e-9 ? 0 : v).toFixed(decimalsOf(step));
  if (v === 0) return "0";
  return Math.abs(v) >= 1e9 || Math.abs(v) < 1e-4 ? v.toExponential(2).replace(/\.?0+e/, "e") : String(+v.toPrecision(6));
}

// Ticks of a logarithmic range: the decades, with 2 and 5 between them when there are few.
export function logTicks(lo, hi) {
  if (!(lo > 0 && hi > lo)) return [];
  const a = Math.floor(Math.log10(lo)), b = Math.ceil(Math.log10(hi));
  const mult = b - a <= 2 ? [1, 2, 5] : [1];
  const every = Math.max(1, Math.ceil((b - a) / 6));
  const out = [];
  for (let e = a; e <= b; e += every) for (const m of mult) {
    const v = m * 10 ** e;
    if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push(v);
  }
  return out;
}

const SECOND_STEPS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30,
  60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 2 * 86400, 7 * 86400, 14 * 86400];
const MONTH_STEPS = [1, 2, 3, 6, 12, 24, 60, 120];

const pad = (n, w = 2) => String(n).padStart(w, "0");
const dateOf = (d) => `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;

// Round UTC times within [a, b] (seconds since 1970), at most about `most` intervals, each
// with its label: the time of day at the step's precision, the date on the first tick and
// wherever the date changes (day steps: the date alone; month steps: year-month).
export function timeTicks(a, b, most) {
  const lo = Math.min(a, b), hi = Math.max(a, b);
  if (!(hi > lo)) return isFinite(lo) ? [{ value: lo, label: timeLabel(lo, 1, true) }] : [];
  const raw = (hi - lo) / Math.max(1, most) / 1.4;
  const out = [];
  if (raw > 14 * 86400) {
    const months = MONTH_STEPS.find((m) => m * 30.44 * 86400 >= raw) || 120;
    const d0 = new Date(lo * 1000);
    let y = d0.getUTCFullYear(), m = Math.ceil((d0.getUTCMonth() + (d0.getUTCDate() > 1 || lo % 86400 ? 1 : 0)) / months) * months;
    for (;;) {
      const t = Date.UTC(y, m, 1) / 1000;
      if (t > hi) break;
      if (t >= lo) {
        const d = new Date(t * 1000);
        out.push({ value: t, label: months % 12 === 0 ? String(d.getUTCFullYear()) : `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}` });
      }
      m += months;
    }
    return out;
  }
  const step = SECOND_STEPS.find((s) => s >= raw * (1 - 1e-9));
  let prevDate = null;
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) {
    const t = +(k * step).toFixed(3);
    const date = dateOf(new Date(Math.round(t * 1000)));
    out.push({ value: t, label: timeLabel(t, step, date !== prevDate) });
    prevDate = date;
  }
  return out;
}

// A UTC time at the precision of `step` seconds; with `withDate` the date before it.
export function timeLabel(t, step, withDate) {
  const ms = Math.round(t * 1000);
  const d = new Date(ms);
  const date = dateOf(d);
  if (step >= 86400) return date;
  let clock = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  if (step < 60) clock += `:${pad(d.getUTCSeconds())}`;
  if (step < 1) clock += "." + pad(d.getUTCMilliseconds(), 3).slice(0, Math.max(1, decimalsOf(step)));
  return withDate ? `${date} ${clock}` : clock;
}

// The fractional index where a monotonic coordinate (either direction) takes value x:
// linear between neighbours, extrapolated by the end steps, so a tick at a round value
// lands between the cells that hold it.
export function indexOf(values, x) {
  const n = values.length;
  if (n === 1) return 0;
  const up = values[n - 1] >= values[0];
  const before = (v) => (up ? v <= x : v >= x);
  if (!before(values[0])) return (x - values[0]) / (values[1] - values[0]);
  if (before(values[n - 1])) return n - 1 + (x - values[n - 1]) / (values[n - 1] - values[n - 2]);
  let lo = 0, hi = n - 1; // values[lo] before x, values[hi] not
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (before(values[mid])) lo = mid; else hi = mid;
  }
  return lo + (x - values[lo]) / (values[hi] - values[lo]);
}
