// Recall per rule family and overall precision on the generated, labelled corpus (test/corpus).
// Fails below recall 0.95 for any family or precision 0.95 overall, printing the table either way.
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { createInspector, type ScanFinding } from '../../src/inspect/index.js';
import { buildCorpus, type Sample } from '../corpus/corpus.js';

const KEY = 'corpus-fingerprint-key';
const fingerprint = (v: string): string => createHmac('sha256', KEY).update(v).digest('hex').slice(0, 16);

interface Row {
  secrets: number;
  found: number;
  falsePositives: number;
}

describe('labelled corpus', () => {
  it('reaches recall >= 0.95 for every family and precision >= 0.95 overall', async () => {
    const inspector = createInspector(configSchema.parse({}).inspect, { fingerprintKey: KEY });
    const { positives, negatives } = buildCorpus();
    const rows = new Map<string, Row>();
    const misses: string[] = [];
    const falsePositives: string[] = [];
    let tp = 0;
    let fp = 0;
    let bodies = 0;

    const findingsOf = async (s: Sample): Promise<ScanFinding[]> => {
      if (s.text !== undefined) return inspector.scanText(s.text);
      bodies++;
      const b = s.body!;
      const out = await inspector.inspectBody(b.data, { contentType: b.contentType, contentEncoding: b.contentEncoding, action: 'block' });
      return out.findings;
    };

    for (const sample of [...positives, ...negatives]) {
      const family = sample.family ?? 'clean';
      const row = rows.get(family) ?? { secrets: 0, found: 0, falsePositives: 0 };
      rows.set(family, row);
      const expected = new Map(sample.secrets.map((s) => [fingerprint(s), s]));
      const matched = new Set<string>();
      for (const f of await findingsOf(sample)) {
        if (expected.has(f.fingerprint)) {
          tp++;
          matched.add(f.fingerprint);
        } else {
          fp++;
          row.falsePositives++;
          falsePositives.push(`${sample.id}: ${f.rule} line ${f.line} ${f.masked}`);
        }
      }
      for (const [h, value] of expected) {
        row.secrets++;
        if (matched.has(h)) row.found++;
        else misses.push(`${sample.id}: ${value.slice(0, 24)}…`);
      }
    }

    const precision = tp / Math.max(1, tp + fp);
    const lines = [
      `corpus: ${positives.length} positive and ${negatives.length} clean samples (${bodies} as request bodies)`,
      'family                 secrets  found  recall  false+',
    ];
    for (const [family, r] of [...rows].sort()) {
      const recall = r.secrets === 0 ? '-' : (r.found / r.secrets).toFixed(3);
      lines.push(`${family.padEnd(22)} ${String(r.secrets).padStart(7)} ${String(r.found).padStart(6)} ${recall.padStart(7)} ${String(r.falsePositives).padStart(7)}`);
    }
    lines.push(`precision ${precision.toFixed(4)} (${tp} true, ${fp} false findings)`);
    if (misses.length > 0) lines.push('misses:', ...misses.slice(0, 40).map((m) => `  ${m}`));
    if (falsePositives.length > 0) lines.push('false positives:', ...falsePositives.slice(0, 40).map((m) => `  ${m}`));
    console.log(lines.join('\n'));

    for (const [family, r] of rows) {
      if (r.secrets > 0) expect(r.found / r.secrets, `recall of ${family}`).toBeGreaterThanOrEqual(0.95);
    }
    expect(precision).toBeGreaterThanOrEqual(0.95);
  });
});
