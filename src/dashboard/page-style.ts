// The dashboard's stylesheet, inlined into the page and allowed by its hash in the CSP.
export const PAGE_STYLE = `
:root {
  --bg: #0f1419; --panel: #171d24; --line: #263140; --text: #d8dee6; --muted: #8694a5; --head: #f2f5f8;
  --allow: #3fb27f; --redact: #4a9fe0; --block: #e5534b; --deny: #d9822b; --rate_limited: #c9a227; --error: #a371f7;
  --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
}
* { box-sizing: border-box; }
html, body { margin: 0; background: var(--bg); color: var(--text); font: 13px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { display: flex; align-items: center; gap: 14px; padding: 12px 20px; border-bottom: 1px solid var(--line); background: var(--panel); }
header h1 { margin: 0; font-size: 16px; font-weight: 600; color: var(--head); letter-spacing: .2px; }
header h1 span { color: var(--muted); font-weight: 400; }
header .meta { margin-left: auto; color: var(--muted); font-size: 12px; }
.pill { display: inline-flex; align-items: center; gap: 6px; padding: 2px 10px; border-radius: 999px; border: 1px solid var(--line); font-size: 12px; color: var(--muted); }
.pill::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: var(--muted); }
.pill.live { color: var(--allow); } .pill.live::before { background: var(--allow); }
.pill.polling { color: var(--rate_limited); } .pill.polling::before { background: var(--rate_limited); }
.pill.offline { color: var(--block); } .pill.offline::before { background: var(--block); }
main { padding: 16px 20px 28px; display: grid; gap: 16px; max-width: 1600px; margin: 0 auto; }
.cards { display: grid; grid-template-columns: repeat(6, minmax(120px, 1fr)); gap: 12px; }
.card { background: var(--panel); border: 1px solid var(--line); border-left: 3px solid var(--muted); border-radius: 6px; padding: 10px 12px; }
.card .label { color: var(--muted); font-size: 11px; text-transform: uppercase; letter-spacing: .6px; }
.card .value { font-size: 22px; font-weight: 600; color: var(--head); font-variant-numeric: tabular-nums; }
.card .value small { font-size: 12px; font-weight: 400; color: var(--muted); margin-left: 2px; }
.card .sub { color: var(--muted); font-size: 12px; font-variant-numeric: tabular-nums; }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; min-width: 0; }
.panel h2 { margin: 0 0 8px; font-size: 12px; font-weight: 600; color: var(--muted); text-transform: uppercase; letter-spacing: .6px; display: flex; gap: 8px; align-items: baseline; }
.panel h2 .hint { margin-left: auto; text-transform: none; letter-spacing: 0; font-weight: 400; }
svg.chart { display: block; width: 100%; height: 120px; }
svg.chart .grid { stroke: var(--line); stroke-width: 1; }
svg.chart text { fill: var(--muted); font-size: 10px; font-family: var(--mono); }
.note { margin-top: 6px; color: var(--muted); font-size: 12px; }
.legend { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 6px; color: var(--muted); font-size: 12px; }
.legend span::before { content: ""; display: inline-block; width: 9px; height: 9px; border-radius: 2px; margin-right: 5px; background: var(--muted); vertical-align: -1px; }
.columns { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 12px; align-items: start; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th { text-align: left; font-weight: 600; color: var(--muted); font-size: 11px; text-transform: uppercase; letter-spacing: .5px; padding: 6px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
td { padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
tr:last-child td { border-bottom: 0; }
td.num, th.num { text-align: right; }
td.mono, .mono { font-family: var(--mono); font-size: 12px; }
td.reqid { font-size: 11px; white-space: nowrap; user-select: all; }
td.path { max-width: 520px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
td .muted, .muted { color: var(--muted); }
.tag { display: inline-block; font-size: 10px; color: var(--muted); border: 1px solid var(--line); border-radius: 3px; padding: 0 4px; margin-left: 6px; }
tr.new td { animation: flash 2.5s ease-out; }
@keyframes flash { from { background: #3a2a1a; } to { background: transparent; } }
.badge { display: inline-block; padding: 1px 7px; border-radius: 3px; font-size: 11px; font-weight: 600; color: #0f1419; background: var(--muted); white-space: nowrap; }
.rule { display: inline-block; font-family: var(--mono); font-size: 11px; padding: 0 5px; margin: 0 4px 2px 0; border-radius: 3px; background: #2a2130; color: #e6c7ff; }
.empty { color: var(--muted); padding: 14px 8px; text-align: center; }
.scroll { max-height: 560px; overflow: auto; }
td.nowrap { white-space: nowrap; }
.health-row { display: flex; align-items: baseline; gap: 8px; padding: 6px 0; border-bottom: 1px solid var(--line); }
.health-row:last-child { border-bottom: 0; }
.health-row .name { font-weight: 600; color: var(--head); }
.health-row .detail { margin-left: auto; color: var(--muted); font-size: 12px; text-align: right; }
.dot { width: 9px; height: 9px; border-radius: 50%; background: var(--muted); flex: none; align-self: center; }
.dot.ok { background: var(--allow); } .dot.failing { background: var(--block); } .dot.unknown { background: var(--muted); }
.c-allow { border-left-color: var(--allow); } .c-redact { border-left-color: var(--redact); } .c-block { border-left-color: var(--block); }
.c-deny { border-left-color: var(--deny); } .c-rate_limited { border-left-color: var(--rate_limited); } .c-error { border-left-color: var(--error); }
.b-allow { background: var(--allow); } .b-redact { background: var(--redact); } .b-block { background: var(--block); }
.b-deny { background: var(--deny); } .b-rate_limited { background: var(--rate_limited); } .b-error { background: var(--error); }
.legend .l-allow::before { background: var(--allow); } .legend .l-redact::before { background: var(--redact); } .legend .l-block::before { background: var(--block); }
.legend .l-deny::before { background: var(--deny); } .legend .l-rate_limited::before { background: var(--rate_limited); } .legend .l-error::before { background: var(--error); }
svg .f-allow { fill: var(--allow); } svg .f-redact { fill: var(--redact); } svg .f-block { fill: var(--block); }
svg .f-deny { fill: var(--deny); } svg .f-rate_limited { fill: var(--rate_limited); } svg .f-error { fill: var(--error); }
svg .area { fill-opacity: .75; }
footer { color: var(--muted); font-size: 11px; text-align: center; padding-bottom: 18px; }
@media (max-width: 1100px) { .cards { grid-template-columns: repeat(3, 1fr); } .charts, .columns { grid-template-columns: 1fr; } }
`;
