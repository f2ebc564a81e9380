// Leaf minting cost for forward-mode interception (issue 5 "Evidence").
//   npx tsc -p tsconfig.build.json && node bench/mint.mjs [--json]
// Measures: leaf key generation, first mint per host (sequential and as a burst of distinct hosts),
// cached lookups, and the longest event-loop stall while minting — the number that matters for other
// clients' streams. For comparison it also times forge's own pure-JS RSA signature of the same kind
// of certificate, which is what minting would cost the event loop without native signing.
import { performance, monitorEventLoopDelay } from 'node:perf_hooks';
import forge from 'node-forge';
import { createCA } from '../dist/tls/ca.js';
import { LeafMinter } from '../dist/tls/mint.js';

const json = process.argv.includes('--json');
const ms = (n) => Math.round(n * 100) / 100;
const pct = (arr, p) => {
  const s = [...arr].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

/** Runs fn while sampling the event loop; returns fn's result and the worst stall seen. */
async function watchLoop(fn) {
  const elu0 = performance.eventLoopUtilization();
  const h = monitorEventLoopDelay({ resolution: 1 });
  let worstGap = 0;
  let last = performance.now();
  const tick = setInterval(() => {
    const now = performance.now();
    worstGap = Math.max(worstGap, now - last - 1);
    last = now;
  }, 1);
  h.enable();
  const result = await fn();
  h.disable();
  clearInterval(tick);
  const elu = performance.eventLoopUtilization(elu0);
  return { result, loopBusyMs: elu.active, maxDelayMs: ms(Math.max(h.max / 1e6 - 1, worstGap)), p99DelayMs: ms(h.percentile(99) / 1e6 - 1) };
}

const ca = createCA({ commonName: 'aigate bench CA' });
const results = {};

for (const keyType of ['ec', 'rsa']) {
  let t = performance.now();
  const minter = new LeafMinter(ca, { keyType });
  await minter.ready();
  const keygenMs = performance.now() - t;

  // Warm-up (JIT) on a throwaway host.
  await minter.contextFor('warmup.example');

  const firsts = [];
  const seq = await watchLoop(async () => {
    for (let i = 0; i < 200; i++) {
      t = performance.now();
      await minter.contextFor(`host-${i}.example.com`);
      firsts.push(performance.now() - t);
    }
  });

  const cached = [];
  for (let i = 0; i < 2000; i++) {
    t = performance.now();
    await minter.contextFor(`host-${i % 200}.example.com`);
    cached.push(performance.now() - t);
  }

  t = performance.now();
  const burst = await watchLoop(() => Promise.all(Array.from({ length: 100 }, (_, i) => minter.contextFor(`burst-${i}.example.net`))));
  const burstMs = performance.now() - t;

  results[keyType] = {
    leafKeyGenerationMs: ms(keygenMs),
    firstMintMs: { p50: ms(pct(firsts, 50)), p99: ms(pct(firsts, 99)), max: ms(Math.max(...firsts)) },
    cachedMs: { p50: ms(pct(cached, 50)), p99: ms(pct(cached, 99)) },
    // Event-loop time per mint (includes the 1 ms sampling timer's own callbacks).
    eventLoopBusyMsPerMint: ms(seq.loopBusyMs / 200),
    sequentialMintEventLoopMaxDelayMs: seq.maxDelayMs,
    burst100DistinctHosts: { totalMs: ms(burstMs), perHostMs: ms(burstMs / 100), eventLoopMaxDelayMs: burst.maxDelayMs },
  };
}

// Reference: the same kind of leaf signed by forge in JS (what we avoid).
{
  const caKey = forge.pki.privateKeyFromPem(ca.keyPem);
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const leafKeys = forge.pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
  const times = [];
  for (let i = 0; i < 20; i++) {
    const t = performance.now();
    const c = forge.pki.createCertificate();
    c.publicKey = leafKeys.publicKey;
    c.serialNumber = '01' + i.toString(16).padStart(2, '0');
    c.validity.notBefore = new Date();
    c.validity.notAfter = new Date(Date.now() + 30 * 86_400_000);
    c.setSubject([{ name: 'commonName', value: `forge-${i}.example` }]);
    c.setIssuer(caCert.subject.attributes);
    c.setExtensions([{ name: 'subjectAltName', altNames: [{ type: 2, value: `forge-${i}.example` }] }]);
    c.sign(caKey, forge.md.sha256.create());
    forge.pki.certificateToPem(c);
    times.push(performance.now() - t);
  }
  results.forgePureJsSignReference = { blockingMsPerCert: { p50: ms(pct(times, 50)), max: ms(Math.max(...times)) } };
}

if (json) {
  console.log(JSON.stringify({ node: process.version, results }, null, 2));
} else {
  console.log(`leaf minting, node ${process.version}`);
  for (const k of ['ec', 'rsa']) {
    const r = results[k];
    console.log(`\nleaf key ${k}: key generation ${r.leafKeyGenerationMs} ms (once, off-thread)`);
    console.log(`  first mint      p50 ${r.firstMintMs.p50} ms  p99 ${r.firstMintMs.p99} ms  max ${r.firstMintMs.max} ms`);
    console.log(`  cached          p50 ${r.cachedMs.p50} ms  p99 ${r.cachedMs.p99} ms`);
    console.log(`  event loop      busy ${r.eventLoopBusyMsPerMint} ms per mint; max stall ${r.sequentialMintEventLoopMaxDelayMs} ms over 200 sequential mints`);
    console.log(`  burst of 100 distinct hosts: ${r.burst100DistinctHosts.totalMs} ms total (${r.burst100DistinctHosts.perHostMs} ms/host), max stall ${r.burst100DistinctHosts.eventLoopMaxDelayMs} ms`);
  }
  const f = results.forgePureJsSignReference.blockingMsPerCert;
  console.log(`\nreference: forge pure-JS RSA signing blocks the event loop ${f.p50} ms per certificate (max ${f.max} ms)`);
}
