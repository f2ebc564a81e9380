// The dashboard page: one self-contained HTML document (inline style and script, nothing fetched
// from elsewhere) and the headers that go with it. The markup is static; all data arrives as JSON
// and is inserted by the script as text. The CSP allows exactly the inline style and script by
// hash, so any markup that did slip into the page could not run.
import { createHash } from 'node:crypto';
import { PAGE_SCRIPT } from './page-script.js';
import { PAGE_STYLE } from './page-style.js';
import { DECISIONS } from './stats.js';

const LABEL: Record<(typeof DECISIONS)[number], string> = {
  allow: 'Allowed',
  redact: 'Redacted',
  block: 'Blocked',
  deny: 'Denied',
  rate_limited: 'Rate limited',
  error: 'Errors',
};

const cards = DECISIONS.map(
  (d) => `      <div class="card c-${d}"><div class="label">${LABEL[d]}</div><div class="value" id="rate-${d}">–</div><div class="sub" id="hour-${d}">&nbsp;</div></div>`,
).join('\n');
const legend = (ds: readonly string[]) => ds.map((d) => `<span class="l-${d}">${LABEL[d as (typeof DECISIONS)[number]]}</span>`).join('');

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>aigate · dashboard</title>
<link rel="icon" href="data:,">
<style>${PAGE_STYLE}</style>
</head>
<body>
<header>
  <h1>aigate <span>dashboard</span></h1>
  <span id="status" class="pill">connecting</span>
  <span class="meta" id="updated"></span>
</header>
<main>
  <section class="cards" aria-label="Requests per second by decision">
${cards}
  </section>
  <section class="charts">
    <div class="panel"><h2>Requests per second <span class="hint">last 5 minutes, all decisions</span></h2><div id="chart-all"></div><div class="legend">${legend(DECISIONS)}</div></div>
    <div class="panel"><h2>Refused per second <span class="hint">last 5 minutes</span></h2><div id="chart-refused"></div><div class="legend">${legend(['block', 'deny', 'rate_limited', 'error'])}</div></div>
  </section>
  <section class="columns">
    <div class="panel"><h2>Health</h2><div id="health"></div></div>
    <div class="panel"><h2>Top clients <span class="hint">last hour</span></h2>
      <table id="clients"><thead><tr><th>Client</th><th class="num">Requests</th><th class="num">Refused</th></tr></thead><tbody id="clients-body"></tbody></table>
    </div>
    <div class="panel"><h2>Top rules <span class="hint">last hour</span></h2>
      <table id="rules"><thead><tr><th>Rule</th><th class="num">Findings</th><th>Action</th></tr></thead><tbody id="rules-body"></tbody></table>
      <div class="note" id="messages-hour"></div>
    </div>
  </section>
  <section class="panel">
    <h2>Recent attempts <span class="hint" id="recent-count"></span></h2>
    <div class="scroll">
      <table id="recent">
        <thead><tr><th>Time</th><th>Decision</th><th>Client</th><th>Route / host</th><th>Request</th><th class="num">Status</th><th>Reason</th><th>Rules</th><th>Request id</th></tr></thead>
        <tbody id="recent-body"><tr><td class="empty" colspan="8">Loading…</td></tr></tbody>
      </table>
    </div>
  </section>
</main>
<footer>Secrets are never shown here: findings appear by rule id only. Data is kept in memory and resets when aigate restarts.</footer>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

export const PAGE_CSP = [
  "default-src 'none'",
  `script-src ${sha256(PAGE_SCRIPT)}`,
  `style-src ${sha256(PAGE_STYLE)}`,
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Headers for every dashboard response: no caching, no sniffing, no framing. */
export const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
} as const;
