// The dashboard's browser script, inlined into the page and allowed by its hash in the CSP. Plain
// ES5-ish JavaScript in a string: no build step, no libraries. Every value from the server goes
// into the DOM through textContent or setAttribute, never as markup: paths, user names and hosts
// are client-controlled and must not become script on the operators' screen.
export const PAGE_SCRIPT = String.raw`
(function () {
  'use strict';
  var DECISIONS = ['allow', 'redact', 'block', 'deny', 'rate_limited', 'error'];
  var LABEL = { allow: 'allowed', redact: 'redacted', block: 'blocked', deny: 'denied', rate_limited: 'rate limited', error: 'error' };
  var ALL = ['allow', 'redact', 'block', 'deny', 'rate_limited', 'error'];
  var REFUSED = ['block', 'deny', 'rate_limited', 'error'];
  var SVG = 'http://www.w3.org/2000/svg';
  var lastSeq = -1;
  var lastUpdate = 0;
  var source = null;

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, String(attrs[k]));
    return e;
  }
  function known(d) { return DECISIONS.indexOf(d) >= 0 ? d : 'error'; }
  function fmtRate(n) { return n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2); }
  function fmtInt(n) { return Math.round(n).toLocaleString('en-US'); }
  function pad(n) { return (n < 10 ? '0' : '') + n; }
  function clock(iso) {
    var d = new Date(iso);
    return isNaN(d.getTime()) ? String(iso) : pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }
  function ago(iso, nowIso) {
    if (!iso) return 'never';
    var s = Math.max(0, Math.round((new Date(nowIso).getTime() - new Date(iso).getTime()) / 1000));
    if (s < 60) return s + 's ago';
    if (s < 3600) return Math.floor(s / 60) + 'm ago';
    if (s < 86400) return Math.floor(s / 3600) + 'h ago';
    return Math.floor(s / 86400) + 'd ago';
  }
  function duration(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
    if (s < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
    return Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h';
  }
  function niceMax(v) {
    if (v <= 1) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * p >= v) return steps[i] * p;
    return 10 * p;
  }
  function empty(tbody, cols, text) {
    var tr = el('tr');
    var td = el('td', 'empty', text);
    td.colSpan = cols;
    tr.appendChild(td);
    tbody.replaceChildren(tr);
  }

  function renderCards(s) {
    DECISIONS.forEach(function (d) {
      var v = $('rate-' + d);
      v.textContent = fmtRate(s.rates[d] || 0);
      v.appendChild(el('small', null, '/s'));
      $('hour-' + d).textContent = fmtInt(s.lastHour[d] || 0) + ' in the last hour';
    });
  }

  function renderChart(id, s, layers) {
    var box = $(id);
    var W = 600, H = 120, L = 34, T = 6, B = 16;
    var n = s.series.seconds;
    var totals = new Array(n).fill(0);
    layers.forEach(function (d) { var a = s.series.decisions[d]; for (var i = 0; i < n; i++) totals[i] += a[i]; });
    var max = niceMax(Math.max.apply(null, totals));
    var x = function (i) { return L + ((W - L) * i) / (n - 1); };
    var y = function (v) { return T + (H - T - B) * (1 - v / max); };
    var root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none', class: 'chart', role: 'img' });
    [0, 0.5, 1].forEach(function (f) {
      var yy = y(max * f);
      root.appendChild(svg('line', { x1: L, x2: W, y1: yy, y2: yy, class: 'grid' }));
      var t = svg('text', { x: L - 4, y: yy + 3, 'text-anchor': 'end' });
      t.textContent = f === 0 ? '0' : fmtRate(max * f);
      root.appendChild(t);
    });
    var below = new Array(n).fill(0);
    layers.forEach(function (d) {
      var a = s.series.decisions[d];
      var top = below.map(function (b, i) { return b + a[i]; });
      var dstr = 'M' + x(0) + ',' + y(top[0]);
      for (var i = 1; i < n; i++) dstr += 'L' + x(i).toFixed(1) + ',' + y(top[i]).toFixed(1);
      for (var j = n - 1; j >= 0; j--) dstr += 'L' + x(j).toFixed(1) + ',' + y(below[j]).toFixed(1);
      root.appendChild(svg('path', { d: dstr + 'Z', class: 'area f-' + d }));
      below = top;
    });
    var minutes = Math.round(n / 60);
    var l = svg('text', { x: L, y: H - 3 }); l.textContent = '-' + minutes + 'm'; root.appendChild(l);
    var r = svg('text', { x: W, y: H - 3, 'text-anchor': 'end' }); r.textContent = 'now'; root.appendChild(r);
    box.replaceChildren(root);
  }

  function renderRecent(s) {
    var tbody = $('recent-body');
    $('recent-count').textContent = s.recent.length ? s.recent.length + ' shown' : '';
    if (!s.recent.length) return empty(tbody, 9, 'No blocked, denied, rate-limited or failed requests yet.');
    var rows = s.recent.map(function (a) {
      var tr = el('tr');
      if (lastSeq >= 0 && a.seq > lastSeq) tr.className = 'new';
      tr.setAttribute('data-seq', String(a.seq));
      var t = el('td', 'mono', clock(a.time)); t.title = a.time; tr.appendChild(t);
      var dc = el('td'); dc.appendChild(el('span', 'badge b-' + known(a.decision), LABEL[known(a.decision)])); tr.appendChild(dc);
      var client = el('td', 'mono', a.client.ip);
      if (a.client.user !== null) { client.appendChild(document.createElement('br')); client.appendChild(el('span', 'muted', a.client.user)); }
      tr.appendChild(client);
      var route = el('td', 'nowrap', a.route !== null ? a.route : a.host !== null ? a.host : '—');
      route.appendChild(el('span', 'tag', a.mode));
      tr.appendChild(route);
      var req = (a.method !== null ? a.method + ' ' : '') + (a.path !== null ? a.path : a.host !== null ? a.host : '');
      var p = el('td', 'mono path', req); p.title = req; tr.appendChild(p);
      tr.appendChild(el('td', 'num mono', a.status || '—'));
      var why = el('td', 'mono', a.reason !== null ? a.reason : '');
      if (a.error) { why.appendChild(document.createElement('br')); why.appendChild(el('span', 'muted', a.error)); }
      tr.appendChild(why);
      var rules = el('td');
      a.rules.forEach(function (id) { rules.appendChild(el('span', 'rule', id)); });
      tr.appendChild(rules);
      tr.appendChild(el('td', 'mono reqid', a.id));
      return tr;
    });
    tbody.replaceChildren.apply(tbody, rows);
  }

  function renderClients(s) {
    var tbody = $('clients-body');
    var list = s.topClients.slice();
    if (s.otherClients) list.push(s.otherClients);
    if (!list.length) return empty(tbody, 3, 'No requests in the last hour.');
    tbody.replaceChildren.apply(tbody, list.map(function (c) {
      var tr = el('tr');
      var who = el('td', 'mono', c.ip);
      if (c.user !== null) { who.appendChild(document.createElement('br')); who.appendChild(el('span', 'muted', c.user)); }
      tr.appendChild(who);
      tr.appendChild(el('td', 'num', fmtInt(c.requests)));
      tr.appendChild(el('td', 'num', fmtInt(c.refused)));
      return tr;
    }));
  }

  function renderRules(s) {
    var m = s.lastHourMessages || {};
    var messages = DECISIONS.reduce(function (n, d) { return n + (m[d] || 0); }, 0);
    $('messages-hour').textContent = messages ? fmtInt(messages) + ' WebSocket message' + (messages === 1 ? '' : 's') + ' with findings or refused (' + fmtInt(m.block || 0) + ' blocked), not counted as requests' : '';
    var tbody = $('rules-body');
    if (!s.topRules.length) return empty(tbody, 3, 'No findings in the last hour.');
    var rows = s.topRules.map(function (r) {
      var tr = el('tr');
      var name = el('td'); name.appendChild(el('span', 'rule', r.rule)); tr.appendChild(name);
      tr.appendChild(el('td', 'num', fmtInt(r.findings)));
      var parts = [];
      if (r.byAction.block) parts.push(fmtInt(r.byAction.block) + ' blocked');
      if (r.byAction.redact) parts.push(fmtInt(r.byAction.redact) + ' redacted');
      if (r.byAction.monitor) parts.push(fmtInt(r.byAction.monitor) + ' monitored');
      tr.appendChild(el('td', 'muted', parts.join(', ')));
      return tr;
    });
    if (s.otherRules) {
      var tr = el('tr');
      tr.appendChild(el('td', 'muted', '(other)'));
      tr.appendChild(el('td', 'num', fmtInt(s.otherRules)));
      tr.appendChild(el('td'));
      rows.push(tr);
    }
    tbody.replaceChildren.apply(tbody, rows);
  }

  function healthRow(state, name, tag, detail) {
    var row = el('div', 'health-row');
    row.appendChild(el('span', 'dot ' + state));
    var n = el('span', 'name', name);
    row.appendChild(n);
    if (tag) row.appendChild(el('span', 'tag', tag));
    row.appendChild(el('span', 'detail', detail));
    return row;
  }

  function renderHealth(s) {
    var box = $('health');
    var rows = [];
    var rl = s.health.rateLimit;
    rows.push(rl
      ? healthRow(rl.healthy ? 'ok' : 'failing', 'rate-limit store', rl.store, rl.healthy ? 'healthy' : 'unreachable: requests get onStoreError')
      : healthRow('unknown', 'rate-limit store', null, 'rate limiting off'));
    s.health.upstreams.forEach(function (u) {
      var detail = u.state === 'unknown' ? 'no traffic yet'
        : u.state === 'ok' ? 'ok, last answer ' + ago(u.lastOkAt, s.now)
        : (u.lastError || 'failing') + (u.consecutiveErrors > 1 ? ' ×' + u.consecutiveErrors : '') + ', ' + ago(u.lastErrorAt, s.now);
      var row = healthRow(u.state === 'ok' || u.state === 'failing' ? u.state : 'unknown', u.name, u.mode, detail);
      if (u.target) row.title = u.target;
      rows.push(row);
    });
    box.replaceChildren.apply(box, rows);
  }

  function render(s) {
    lastUpdate = Date.now();
    renderCards(s);
    renderChart('chart-all', s, ALL);
    renderChart('chart-refused', s, REFUSED);
    renderRecent(s);
    renderClients(s);
    renderRules(s);
    renderHealth(s);
    lastSeq = s.recent.length ? s.recent[0].seq : Math.max(lastSeq, 0);
    $('updated').textContent = 'updated ' + clock(s.now) + ' · up ' + duration(new Date(s.now).getTime() - new Date(s.startedAt).getTime());
  }

  function status(kind, text) {
    var p = $('status');
    p.className = 'pill ' + kind;
    p.textContent = text;
  }

  function poll() {
    return fetch('/api/dashboard', { cache: 'no-store' })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
      .then(function (s) { render(s); if (!source || source.readyState !== 1) status('polling', 'polling'); })
      .catch(function () { status('offline', 'offline'); });
  }

  function connect() {
    if (!window.EventSource) { status('polling', 'polling'); return; }
    source = new EventSource('/api/dashboard/events');
    source.onmessage = function (e) { render(JSON.parse(e.data)); status('live', 'live'); };
    source.onerror = function () { status('polling', source.readyState === 2 ? 'polling' : 'reconnecting'); };
  }

  // EventSource reconnects by itself; while it has not delivered for a few seconds (proxy in the
  // way that buffers streams, admin restarting), polling keeps the page current.
  setInterval(function () { if (Date.now() - lastUpdate > 3000) poll(); }, 2000);
  poll();
  connect();
})();
`;
