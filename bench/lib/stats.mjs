// Small statistics for bench figures.
export function sorted(values) {
  return Float64Array.from(values.filter((v) => Number.isFinite(v))).sort();
}

/** Nearest-rank percentile of already sorted values. */
export function pct(s, p) {
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export function median(values) {
  const s = sorted(values);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Median with its spread over rounds. */
export function summary(values) {
  const s = sorted(values);
  return { median: median(values), min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN, n: s.length };
}
