// Replacing spans of a text: what redaction does to a string.

/** A span of a text and what replaces it. */
export interface Edit {
  start: number;
  end: number;
  text: string;
}

/** Sorted edits with every one that overlaps an earlier one merged into it (the earlier's label kept). */
export function mergeEdits<T extends { start: number; end: number }>(edits: T[]): T[] {
  if (edits.length <= 1) return edits;
  edits.sort((a, b) => a.start - b.start || b.end - a.end);
  const out: T[] = [edits[0]!];
  for (let i = 1; i < edits.length; i++) {
    const last = out[out.length - 1]!;
    const e = edits[i]!;
    if (e.start < last.end) last.end = Math.max(last.end, e.end);
    else out.push(e);
  }
  return out;
}

export function splice(text: string, spans: ReadonlyArray<{ start: number; end: number }>, label: (i: number) => string): string {
  let out = '';
  let last = 0;
  spans.forEach((s, i) => {
    out += text.slice(last, s.start) + label(i);
    last = s.end;
  });
  return out + text.slice(last);
}
