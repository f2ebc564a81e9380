// The operational log line per upstream failure is limited per route, host and cause, and says how
// many lines it left out (src/upstream/failure-log.ts).
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { UpstreamFailureLog } from '../../src/upstream/failure-log.js';

function setup() {
  const lines: Array<Record<string, unknown>> = [];
  let now = 0;
  const logger = pino({ level: 'debug' }, { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  const log = new UpstreamFailureLog(logger, { burst: 3, windowMs: 10_000, maxKeys: 2, now: () => now });
  const fail = (host: string, code = 'ECONNREFUSED') => log.report({ requestId: `r-${lines.length}`, route: 'down', host, code, reason: 'upstream_unavailable', status: 502 });
  return { lines, fail, advance: (ms: number) => (now += ms) };
}

describe('UpstreamFailureLog', () => {
  it('logs a burst per route/host/cause, then counts what it left out and says so on the next window', () => {
    const { lines, fail, advance } = setup();
    for (let i = 0; i < 50; i++) fail('a.example');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({ level: 40, msg: 'upstream failed', route: 'down', host: 'a.example', code: 'ECONNREFUSED', status: 502 });
    expect(lines[0]).not.toHaveProperty('suppressed');
    fail('a.example', 'ETIMEDOUT'); // another cause: its own budget
    expect(lines).toHaveLength(4);
    advance(10_000);
    fail('a.example');
    expect(lines[4]).toMatchObject({ host: 'a.example', code: 'ECONNREFUSED', suppressed: 47 });
  });

  it('tracks a bounded number of keys (forward mode reaches many hosts)', () => {
    const { lines, fail } = setup();
    for (let i = 0; i < 100; i++) fail(`h${i}.example`);
    expect(lines).toHaveLength(100); // each new host logs; the map is cleared rather than grown
  });
});
