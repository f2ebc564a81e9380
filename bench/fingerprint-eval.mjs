#!/usr/bin/env node
// Protected-code fingerprints: recall, false positives, index size and speed (issue #16).
//   node bench/fingerprint-eval.mjs [--k 20] [--w 5] [--min-lines 8] [--samples 1000] [--seed 7]
//       [--rename all] [--no-anchors] [--big] [--big-distinct] [--show-fp] [--show-miss N [--miss-set 8] [--verbatim]]
// Index: the sources of several npm packages in node_modules (JavaScript). Positives: snippets of
// those files — verbatim, re-indented and re-wrapped, with their local names renamed (as a
// refactoring does; `--rename all`: every name, properties and globals too), and inside chat JSON
// — of 8–14 and 15–40 lines. Negatives: snippets from other packages of the same language, and
// boilerplate. --seed picks other snippets (the figures move by ±0.03 between seeds at 1,000).
// --big also builds an index of ~1 million lines (renamed copies) and times it, --big-distinct one
// of all the distinct source in node_modules (~980k lines). --no-anchors builds the indexes without
// line anchors (build.ts), as before them. Needs `npm run build` (uses dist/).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { IndexBuilder, DEFAULT_BUILD } from '../dist/fingerprint/build.js';
import { encodeIndex, decodeIndex } from '../dist/fingerprint/index-file.js';
import { FingerprintMatcher } from '../dist/fingerprint/match.js';
import { KEYWORDS } from '../dist/fingerprint/tokens.js';
import { resetWork, work } from '../dist/fingerprint/work.js';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const k = opt('k', DEFAULT_BUILD.k);
const w = opt('w', DEFAULT_BUILD.w);
const minLines = opt('min-lines', 8);
const minDistinct = opt('min-distinct', DEFAULT_BUILD.minDistinct);
const maxFiles = opt('max-files', DEFAULT_BUILD.maxFiles);
const samples = opt('samples', 1000);
const lineAnchors = !args.includes('--no-anchors');
const NM = resolve(import.meta.dirname, '../node_modules');
const INDEXED = ['undici/lib', 'node-forge/lib', 'ws/lib', 'ioredis/built', 'commander/lib'];
// Public code whose k-grams are excluded from the index (`fingerprint build --exclude`): compiled
// packages that share generated helpers with the indexed ones; none of them is a negative below.
const EXCLUDED = ['@anthropic-ai/sdk/lib', '@anthropic-ai/sdk/core', 'openai/internal', 'playwright-core/lib/server', '@bufbuild/protobuf/dist/cjs'];
const OTHERS = ['zod/v4', 'yaml/dist', 'rate-limiter-flexible/lib', 'prom-client/lib', 'pino/lib', 'bcryptjs', 'ignore'];

function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
// Snippets and negatives from one stream, new names from another: the samples stay the same
// whichever renaming is measured.
const rand = rng(opt('seed', 7));
const nameRand = rng(11);

function sources(dir, exts = /\.(js|mjs|cjs|ts)$/) {
  const out = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (exts.test(e.name) && !e.name.endsWith('.d.ts') && !e.name.endsWith('.min.js') && statSync(p).size < 2_000_000) out.push(p);
    }
  };
  walk(dir);
  return out;
}

const codeLike = (lines) => lines.filter((l) => /[A-Za-z_]\w*\s*[(=:.{]/.test(l) && !/^\s*(\/\/|\*|\/\*)/.test(l)).length >= lines.length * 0.6;

function snippets(files, count, minLen, maxLen) {
  const out = [];
  let guard = 0;
  while (out.length < count && guard++ < count * 200) {
    const file = files[Math.floor(rand() * files.length)];
    const lines = readFileSync(file, 'utf8').split('\n');
    const len = minLen + Math.floor(rand() * (maxLen - minLen + 1));
    if (lines.length < len + 2) continue;
    const start = Math.floor(rand() * (lines.length - len));
    const part = lines.slice(start, start + len);
    if (!codeLike(part)) continue;
    out.push({ file, start: start + 1, text: part.join('\n') });
  }
  return out;
}

const reformat = (t) => t.split('\n').map((l) => '\t' + l.trim().replace(/\s*([=(),{}])\s*/g, '$1 ')).join('\n\n');
// Renaming as a person or a refactoring tool does it: every local name (variables, parameters,
// functions, classes, imports) consistently, to a plausible new name; property names (after `.`,
// object literal keys), JavaScript's globals and the language's own words stay (an IDE's "rename
// symbol" leaves `.length`, `{ name: … }`, `Buffer.from` and `require` alone). Strings and
// comments keep their text.
// `--rename all` renames every word instead (properties and globals too): an obfuscator's edit.
const KEEP = new Set([...KEYWORDS, 'of', 'get', 'set', 'require', 'module', 'exports', 'Symbol', 'Object', 'Array', 'Buffer', 'Promise',
  'Math', 'JSON', 'Error', 'TypeError', 'RangeError', 'String', 'Number', 'Boolean', 'Date', 'RegExp', 'Map', 'Set', 'WeakMap', 'WeakSet',
  'process', 'console', 'setTimeout', 'clearTimeout', 'setImmediate', 'queueMicrotask', 'globalThis', 'Uint8Array', 'Uint32Array',
  'DataView', 'ArrayBuffer', 'parseInt', 'parseFloat', 'isNaN', 'Infinity', 'NaN', 'Reflect', 'URL', 'TextDecoder', 'TextEncoder']);
const WORDS = ['item', 'value', 'entry', 'node', 'state', 'opts', 'ctx', 'buf', 'data', 'result', 'handler', 'conn', 'req', 'res', 'key', 'list', 'idx', 'count', 'target', 'source'];
const renameAll = args.includes('--rename') && args[args.indexOf('--rename') + 1] === 'all';
function rename(t) {
  const names = new Map();
  const fresh = () => `${WORDS[Math.floor(nameRand() * WORDS.length)]}${names.size}`;
  const renamed = (id) => {
    if (!names.has(id)) names.set(id, fresh());
    return names.get(id);
  };
  // A number stays whole: the `x4` of `0x4` or the `n` of `10n` is not a name to rename.
  if (renameAll) return t.replace(/\b\d[\w$]*|[A-Za-z_$][\w$]*/g, (id) => (/^\d/.test(id) || (KEEP.has(id) && KEYWORDS.has(id)) ? id : renamed(id)));
  // Code only: strings, comments and numbers are copied as they are.
  return t.replace(/(\/\/[^\n]*|\/\*[\s\S]*?\*\/|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"|`(?:\\.|[^`\\])*`|\b\d[\w$]*)|(\.\s*)?([A-Za-z_$][\w$]*)(?=(\s*:(?!:))?)/g, (all, literal, dot, id, colon, at) => {
    if (literal !== undefined || dot !== undefined || KEEP.has(id)) return all;
    // An object literal's key (`{ name: …`, `, name: …`) is a property too.
    if (colon !== undefined && /(^|[{,])\s*$/.test(t.slice(Math.max(0, at - 80), at))) return all;
    return renamed(id);
  });
}
const inChat = (t) => JSON.parse(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: `Can you review this?\n\n\`\`\`js\n${t}\n\`\`\`\nThanks` }] })).messages[0].content;

const BOILERPLATE = [
  // Shapes every Node codebase has: an import block, a server, an emitter subclass, a fetch
  // wrapper, a test, an options class, a stream, an error class.
  `'use strict';\n\nconst EventEmitter = require('events');\nconst http = require('http');\nconst https = require('https');\nconst { URL } = require('url');\nconst { Readable, Writable } = require('stream');\nconst { promisify } = require('util');\n\nconst DEFAULT_TIMEOUT = 30000;\nconst DEFAULT_RETRIES = 3;\n`,
  `const express = require('express');\nconst app = express();\n\napp.use(express.json());\n\napp.get('/health', (req, res) => {\n  res.status(200).json({ ok: true });\n});\n\napp.post('/items', async (req, res, next) => {\n  try {\n    const item = await store.create(req.body);\n    res.status(201).json(item);\n  } catch (err) {\n    next(err);\n  }\n});\n\napp.listen(process.env.PORT || 3000, () => console.log('listening'));\n`,
  `class Queue extends EventEmitter {\n  constructor(options = {}) {\n    super();\n    this.options = options;\n    this.items = [];\n    this.running = 0;\n    this.concurrency = options.concurrency || 1;\n  }\n\n  push(item) {\n    this.items.push(item);\n    this.emit('push', item);\n    this.next();\n  }\n\n  next() {\n    if (this.running >= this.concurrency || this.items.length === 0) return;\n    this.running++;\n    const item = this.items.shift();\n    this.emit('start', item);\n  }\n}\n`,
  `async function fetchJson(url, options = {}) {\n  const controller = new AbortController();\n  const timer = setTimeout(() => controller.abort(), options.timeout || 10000);\n  try {\n    const res = await fetch(url, { ...options, signal: controller.signal });\n    if (!res.ok) {\n      throw new Error(\`Request failed with status \${res.status}\`);\n    }\n    return await res.json();\n  } finally {\n    clearTimeout(timer);\n  }\n}\n\nmodule.exports = { fetchJson };\n`,
  `describe('parser', () => {\n  let parser;\n\n  beforeEach(() => {\n    parser = new Parser({ strict: true });\n  });\n\n  it('parses an empty input', () => {\n    expect(parser.parse('')).toEqual([]);\n  });\n\n  it('throws on invalid input', () => {\n    expect(() => parser.parse('{')).toThrow(SyntaxError);\n  });\n});\n`,
  `class HttpError extends Error {\n  constructor(status, message, options) {\n    super(message, options);\n    this.name = 'HttpError';\n    this.status = status;\n    Error.captureStackTrace(this, HttpError);\n  }\n\n  toJSON() {\n    return { name: this.name, status: this.status, message: this.message };\n  }\n}\n\nmodule.exports = HttpError;\n`,
  `function readAll(stream) {\n  return new Promise((resolve, reject) => {\n    const chunks = [];\n    stream.on('data', (chunk) => chunks.push(chunk));\n    stream.on('error', reject);\n    stream.on('end', () => resolve(Buffer.concat(chunks)));\n  });\n}\n\nfunction debounce(fn, wait) {\n  let timer = null;\n  return function (...args) {\n    clearTimeout(timer);\n    timer = setTimeout(() => fn.apply(this, args), wait);\n  };\n}\n`,
  `Object.defineProperty(exports, "__esModule", { value: true });\nexports.Client = void 0;\nconst tslib_1 = require("tslib");\nconst events_1 = require("events");\nconst debug_1 = tslib_1.__importDefault(require("debug"));\nconst debug = (0, debug_1.default)("client");\nclass Client extends events_1.EventEmitter {\n    constructor(options) {\n        super();\n        this.options = options;\n        this.status = "wait";\n    }\n}\nexports.Client = Client;\n`,
  `'use strict'\n\nconst assert = require('node:assert')\nconst { EventEmitter } = require('node:events')\nconst util = require('node:util')\nconst net = require('node:net')\n\nmodule.exports = { assert, EventEmitter, util, net }\n`,
  `import React, { useState, useEffect } from 'react';\n\nexport default function App() {\n  const [count, setCount] = useState(0);\n  useEffect(() => {\n    document.title = \`Count: \${count}\`;\n  }, [count]);\n  return <button onClick={() => setCount(count + 1)}>{count}</button>;\n}\n`,
  `class Foo {\n  constructor(options = {}) {\n    this.options = options;\n    this.name = options.name;\n  }\n\n  getName() {\n    return this.name;\n  }\n\n  setName(name) {\n    this.name = name;\n  }\n}\nmodule.exports = Foo;\n`,
  `for (let i = 0; i < arr.length; i++) {\n  if (arr[i] === undefined) continue;\n  result.push(arr[i]);\n}\nreturn result;\n`,
];

// Build the index.
const t0 = process.hrtime.bigint();
const builder = new IndexBuilder({ ...DEFAULT_BUILD, k, w, minDistinct, maxFiles, lineAnchors, label: 'eval' });
const indexed = INDEXED.flatMap((p) => sources(join(NM, p)));
let indexedLines = 0;
for (const f of indexed) {
  const text = readFileSync(f, 'utf8');
  indexedLines += text.split('\n').length;
  builder.add(f.slice(NM.length + 1), text);
}
if (!args.includes('--no-exclude')) for (const f of EXCLUDED.flatMap((p) => sources(join(NM, p), /\.js$/))) builder.exclude(readFileSync(f, 'utf8'));
const index = decodeIndex(encodeIndex(builder.build()));
const buildMs = Number(process.hrtime.bigint() - t0) / 1e6;
const matcher = new FingerprintMatcher(index, minLines);

const report = [];
let missed = [];
const rate = (set, fn) => set.filter((s) => fn(s)).length / set.length;
// A match in any protected file counts: the same code may stand in several of them.
const hit = (s, text) => matcher.match(text).length > 0;
for (const [name, lo, hi] of [['8–14 lines', 8, 14], ['15–40 lines', 15, 40]]) {
  const set = snippets(indexed, samples, lo, hi);
  const views = [(s) => s.text, (s) => reformat(s.text), (s) => (s.renamed ??= rename(s.text)), (s) => inChat(s.text)];
  report.push([name, set.length, ...views.map((view) => rate(set, (s) => hit(s, view(s))).toFixed(3))]);
  if (lo === opt('miss-set', 15)) missed = set.filter((s) => !hit(s, args.includes('--verbatim') ? s.text : s.renamed));
}
const negatives = [...snippets(OTHERS.flatMap((p) => sources(join(NM, p))), samples * 2, 8, 60).map((s) => s.text), ...BOILERPLATE];
const fp = negatives.filter((t) => matcher.match(t).length > 0);

console.log(`k=${k} w=${w} minDistinct=${minDistinct} maxFiles=${maxFiles} minLines=${minLines}: index of ${indexed.length} files, ${indexedLines} lines, ${index.hashes.length} fingerprints, ${(encodeIndex(index).length / 1048576).toFixed(1)} MiB, built in ${buildMs.toFixed(0)} ms`);
console.log('| snippets | n | verbatim | reformatted | renamed | in chat JSON |\n| --- | ---: | ---: | ---: | ---: | ---: |');
for (const r of report) console.log(`| ${r.join(' | ')} |`);
console.log(`false positives: ${fp.length} of ${negatives.length} negative prompts (${((100 * fp.length) / negatives.length).toFixed(2)}%)`);

// Lookup cost: a 256 KiB prompt of code from other packages.
const big = negatives.join('\n').slice(0, 256 * 1024);
const rounds = 20;
const t1 = process.hrtime.bigint();
for (let i = 0; i < rounds; i++) matcher.match(big);
const lookupMs = Number(process.hrtime.bigint() - t1) / 1e6 / rounds;
// The work of one lookup (work.ts), which the host's speed does not move: k-grams looked up in
// the presence filter and the index, binary searches, index entries hit.
resetWork();
matcher.match(big);
console.log(`lookup: ${lookupMs.toFixed(2)} ms per 256 KiB prompt (${work.lookups} k-grams looked up, ${work.steps} searches, ${work.hits} hits)`);

if (args.includes('--big')) {
  // Not the packages the lookup prompt is made of (those would all be hits).
  const all = ['typescript/lib', 'openai/src', '@anthropic-ai/sdk/src', 'undici/lib', 'node-forge/lib', 'ioredis/built', 'ws/lib'].flatMap((p) => sources(join(NM, p)));
  const b = new IndexBuilder({ ...DEFAULT_BUILD, k, w, lineAnchors, label: 'big' });
  let lines = 0;
  const t2 = process.hrtime.bigint();
  for (let copy = 0; lines < 1_000_000; copy++) {
    for (const f of all) {
      const text = readFileSync(f, 'utf8');
      lines += text.split('\n').length;
      b.add(`${copy}/${f}`, copy === 0 ? text : text.replace(/[A-Za-z_]\w*/g, (id) => `${id}${copy}`));
      if (lines >= 1_000_000) break;
    }
  }
  const bytes = encodeIndex(b.build()).length;
  const ms = Number(process.hrtime.bigint() - t2) / 1e6;
  const bigMatcher = new FingerprintMatcher(decodeIndex(encodeIndex(b.build())), minLines);
  const t3 = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) bigMatcher.match(big);
  console.log(`--big: ${lines} lines indexed in ${(ms / 1000).toFixed(1)} s, index ${(bytes / 1048576).toFixed(1)} MiB; lookup ${(Number(process.hrtime.bigint() - t3) / 1e6 / rounds).toFixed(2)} ms per 256 KiB prompt`);
}
// Renamed snippets missed (of 15–40 lines; --miss-set 8: of 8–14): as renamed, and the best run found in them.
if (args.includes('--big-distinct')) {
  // A million lines of distinct code (every source file of node_modules, in path order, until
  // then): the index size a real codebase of that size gets (--big's renamed copies share their
  // renaming-blind k-grams, which the build leaves out as common to many files).
  const files = sources(NM).sort();
  const b = new IndexBuilder({ ...DEFAULT_BUILD, k, w, lineAnchors, label: 'big' });
  let lines = 0;
  const t4 = process.hrtime.bigint();
  const c4 = process.cpuUsage();
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    lines += text.split('\n').length;
    b.add(f.slice(NM.length + 1), text);
    if (lines >= 1_000_000) break;
  }
  const bytes = encodeIndex(b.build()).length;
  const cpu = process.cpuUsage(c4);
  console.log(`--big-distinct: ${lines} lines indexed in ${(Number(process.hrtime.bigint() - t4) / 1e9).toFixed(1)} s (${((cpu.user + cpu.system) / 1e6).toFixed(1)} s CPU), index ${(bytes / 1048576).toFixed(1)} MiB`);
}
if (args.includes('--show-miss')) {
  for (const s of missed.slice(0, opt('show-miss', 4))) {
    const m = new FingerprintMatcher(index, 1).match(s.renamed)[0];
    console.log('--- MISS', s.file.slice(NM.length + 1), s.start, m ? `best run: ${m.file}:${m.fileStart}-${m.fileEnd} ${m.lines} lines` : 'no run', '\n' + s.renamed);
  }
}
if (args.includes('--show-fp')) for (const t of fp.slice(0, 6)) console.log('--- FP', JSON.stringify(matcher.match(t)[0]), '\n' + t.slice(0, 600));
