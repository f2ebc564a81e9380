import type { Preset } from './types.js';

export const cursor: Preset = {
  name: 'cursor',
  title: 'Cursor (editor and CLI)',
  sources: ['https://cursor.com/docs/enterprise/network-configuration'],
  retrieved: '2026-11-29',
  notes: [
    'Cursor prefers HTTP/2 bidirectional streaming and falls back to HTTP/1.1 Server-Sent Events when a proxy does not carry it; where aigate offers only HTTP/1.1 inside an inspected tunnel, Cursor uses that fallback.',
    'Cursor Tab (api3/api4/*.gcpp.cursor.sh) and codebase indexing (repo42.cursor.sh) were documented as HTTP/2-only. If Tab or indexing fail through aigate, add those hosts to egress.allow with inspect: false — their code is then NOT inspected.',
    'Cursor recommends excluding its domains from TLS inspection; this preset inspects the prompt-carrying API on purpose (that is what aigate is for) and tunnels only sign-in, downloads and the extension marketplace.',
    'Requests with your own model keys (BYOK) still go through Cursor servers (api2.cursor.sh), not directly to the model vendor.',
  ],
  entries: [
    { host: '*.cursor.sh', ports: [443], inspect: true, why: 'Cursor backend: api2.cursor.sh (chat, agent, most API calls), api3/api4.cursor.sh and us-*.gcpp.cursor.sh (Tab completions), repo42.cursor.sh (codebase indexing) — carries prompts and code' },
    { host: 'authenticate.cursor.sh', ports: [443], inspect: false, why: 'sign-in (Cursor asks to exclude it from TLS inspection)' },
    { host: 'authenticator.cursor.sh', ports: [443], inspect: false, why: 'sign-in (Cursor asks to exclude it from TLS inspection)' },
    { host: '*.cursorapi.com', ports: [443], inspect: false, why: 'extension marketplace (marketplace.cursorapi.com) and related services' },
    { host: 'cursor-cdn.com', ports: [443], inspect: false, why: 'downloads and updates' },
    { host: '*.cursor-cdn.com', ports: [443], inspect: false, why: 'downloads, updates and extension assets' },
    { host: 'downloads.cursor.com', ports: [443], inspect: false, why: 'application updates' },
  ],
};
