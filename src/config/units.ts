// Human units accepted in the config file: sizes ("512kb", "8mb") and durations ("500ms", "30s").

const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function parseUnit(input: string, units: Record<string, number>): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(input);
  if (!m) return undefined;
  const unit = (m[2] ?? '').toLowerCase();
  const factor = unit === '' ? 1 : units[unit];
  if (factor === undefined) return undefined;
  return Math.round(Number(m[1]) * factor);
}

/** Bytes from `8mb`, `512kb`, `1024` (a bare number is bytes). */
export function parseSize(input: string | number): number | undefined {
  return typeof input === 'number' ? input : parseUnit(input, SIZE_UNITS);
}

/** Milliseconds from `500ms`, `30s`, `5m`, `1h` (a bare number is milliseconds). */
export function parseDuration(input: string | number): number | undefined {
  return typeof input === 'number' ? input : parseUnit(input, DURATION_UNITS);
}
