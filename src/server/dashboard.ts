/**
 * The dashboard every node serves at `/`: one self-contained page (no build step, no external
 * scripts) that polls `/v1/cluster` each second and shows every node's role, term, health,
 * indexes, lag, request rates, a live lag chart, the recent elections, and switchover and
 * step-down buttons (confirmed first; they send the password when the node asks for one).
 */
export function dashboardHtml(nodeId: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Tandem — ${escapeHtml(nodeId)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2330; background: #f7f8fa; }
  h1 { font-size: 1.3rem; margin: 0 0 .2rem; } h2 { font-size: 1rem; margin: 1.4rem 0 .4rem; }
  .muted { color: #667; } .error { color: #b00020; }
  table { border-collapse: collapse; background: #fff; box-shadow: 0 1px 2px #0002; }
  th, td { padding: .35rem .7rem; border-bottom: 1px solid #e4e6ea; text-align: right; white-space: nowrap; }
  th:first-child, td:first-child, td.text { text-align: left; }
  tr.leader td { background: #eef7ee; } tr.down td { background: #fdecee; color: #8a1020; }
  .role { font-weight: 600; } button { margin-right: .4rem; padding: .3rem .7rem; cursor: pointer; }
  svg { background: #fff; box-shadow: 0 1px 2px #0002; } .legend span { margin-right: 1rem; }
</style>
</head>
<body>
<h1>Tandem cluster <span id="cluster"></span></h1>
<div class="muted">served by node <b>${escapeHtml(nodeId)}</b> · <span id="updated">loading…</span> <span id="problem" class="error"></span></div>
<h2>Nodes</h2>
<table id="nodes"><thead><tr>
  <th>node</th><th>role</th><th>term</th><th>health</th><th>last</th><th>commit</th><th>applied</th>
  <th>lag (entries)</th><th>lag (bytes)</th><th>lag (ms)</th><th>writes/s</th><th>reads/s</th><th>alarms</th>
</tr></thead><tbody></tbody></table>
<h2>Follower lag over the last five minutes (ms)</h2>
<svg id="chart" width="760" height="180" role="img" aria-label="follower lag chart"></svg>
<div class="legend" id="legend"></div>
<h2>Operations</h2>
<div>
  <label>hand leadership to <select id="target"></select></label>
  <button id="switchover">Switchover</button>
  <button id="stepdown">Step down (to the most up-to-date follower)</button>
  <span id="opresult" class="muted"></span>
</div>
<h2>Recent elections</h2>
<table id="elections"><thead><tr><th>ended</th><th>term</th><th>new leader</th><th>took (ms)</th><th>reason</th></tr></thead><tbody></tbody></table>
<script>
"use strict";
const history = new Map();   // follower id -> [{t, lagMs}]
const previous = new Map();  // node id -> {t, writes, reads}
const rates = new Map();     // node id -> {writes, reads}
const colors = ['#1f6feb', '#d1242f', '#1a7f37', '#9a6700', '#8250df', '#bf3989'];
let token = sessionStorage.getItem('tandem-token');
let lastView = null;

async function api(method, path) {
  const headers = token ? { authorization: 'Bearer ' + token } : {};
  let response = await fetch(path, { method, headers });
  if (response.status === 401) {
    token = prompt('This cluster needs its password');
    if (token) sessionStorage.setItem('tandem-token', token);
    response = await fetch(path, { method, headers: token ? { authorization: 'Bearer ' + token } : {} });
  }
  const body = await response.json();
  if (!response.ok) throw new Error(body.error ? body.error.code + ': ' + body.error.message : 'HTTP ' + response.status);
  return body;
}

function cell(text, cls) { const td = document.createElement('td'); td.textContent = text; if (cls) td.className = cls; return td; }

function render(view) {
  lastView = view;
  document.getElementById('cluster').textContent = view.clusterId;
  document.getElementById('updated').textContent = 'updated ' + new Date(view.at).toLocaleTimeString();
  const now = Date.now();
  const leader = view.nodes.find((n) => n.reachable && n.status.role === 'leader');
  const lagOf = new Map((leader ? leader.status.followers : []).map((f) => [f.id, f]));
  const tbody = document.querySelector('#nodes tbody');
  tbody.replaceChildren();
  for (const node of view.nodes) {
    const tr = document.createElement('tr');
    tr.dataset.node = node.id;
    if (!node.reachable) {
      tr.className = 'down';
      tr.append(cell(node.id, 'text'), cell('unreachable', 'role text'), cell(''), cell('down', 'text'), cell(''), cell(''), cell(''), cell(''), cell(''), cell(''), cell(''), cell(''), cell(''));
      tbody.append(tr);
      continue;
    }
    const s = node.status;
    const before = previous.get(s.id);
    if (before && now > before.t) rates.set(s.id, { writes: (s.writesOk - before.writes) * 1000 / (now - before.t), reads: (s.readsOk - before.reads) * 1000 / (now - before.t) });
    previous.set(s.id, { t: now, writes: s.writesOk, reads: s.readsOk });
    const rate = rates.get(s.id) || { writes: 0, reads: 0 };
    const lag = lagOf.get(s.id);
    if (s.role === 'leader') tr.className = 'leader';
    const health = s.leader === null ? 'no leader' : lag && lag.lastContactMs !== null && lag.lastContactMs > 1000 ? 'silent ' + lag.lastContactMs + ' ms' : 'ok';
    tr.append(cell(s.id, 'text'), cell(s.role, 'role text'), cell(s.term), cell(health, 'text'), cell(s.lastIndex), cell(s.commitIndex), cell(s.appliedIndex),
      cell(lag ? lag.lagEntries : s.role === 'leader' ? '–' : '?'), cell(lag ? lag.lagBytes : s.role === 'leader' ? '–' : '?'), cell(lag ? lag.lagMs : s.role === 'leader' ? '–' : '?'),
      cell(rate.writes.toFixed(0)), cell(rate.reads.toFixed(0)), cell(s.alarms.length === 0 ? '' : s.alarms.length + ' digest mismatch', 'text error'));
    tbody.append(tr);
  }
  for (const [id, f] of lagOf) {
    const points = history.get(id) || [];
    points.push({ t: now, lagMs: f.lagMs });
    while (points.length > 0 && points[0].t < now - 300000) points.shift();
    history.set(id, points);
  }
  drawChart(now);
  const select = document.getElementById('target');
  const followers = view.nodes.filter((n) => n.reachable && n.status.role !== 'leader').map((n) => n.id);
  if ([...select.options].map((o) => o.value).join() !== followers.join()) {
    select.replaceChildren(...followers.map((id) => { const o = document.createElement('option'); o.value = id; o.textContent = id; return o; }));
  }
  const seen = new Map();
  for (const node of view.nodes) if (node.reachable) for (const e of node.status.elections) seen.set(e.term + '/' + e.leader, e);
  const rows = [...seen.values()].sort((a, b) => b.term - a.term).slice(0, 10);
  document.querySelector('#elections tbody').replaceChildren(...rows.map((e) => {
    const tr = document.createElement('tr');
    tr.append(cell(new Date(e.endedAt).toLocaleTimeString(), 'text'), cell(e.term), cell(e.leader, 'text'), cell(e.durationMs), cell(e.reason, 'text'));
    return tr;
  }));
}

function drawChart(now) {
  const svg = document.getElementById('chart');
  const width = 760, height = 180, pad = 30;
  const all = [...history.values()].flat();
  const max = Math.max(10, ...all.map((p) => p.lagMs));
  const parts = ['<line x1="' + pad + '" y1="' + (height - pad) + '" x2="' + width + '" y2="' + (height - pad) + '" stroke="#ccc"/>',
    '<text x="2" y="14" font-size="11" fill="#667">' + max + ' ms</text>', '<text x="2" y="' + (height - pad) + '" font-size="11" fill="#667">0</text>'];
  const legend = [];
  [...history.entries()].forEach(([id, points], k) => {
    const color = colors[k % colors.length];
    const xy = points.map((p) => (pad + (width - pad) * (1 - (now - p.t) / 300000)).toFixed(1) + ',' + (height - pad - (height - 2 * pad) * p.lagMs / max).toFixed(1));
    parts.push('<polyline fill="none" stroke="' + color + '" stroke-width="2" points="' + xy.join(' ') + '"/>');
    legend.push('<span style="color:' + color + '">■ ' + id + '</span>');
  });
  svg.innerHTML = parts.join('');
  document.getElementById('legend').innerHTML = legend.join('');
}

async function operate(path, what) {
  if (!confirm(what + '?')) return;
  const out = document.getElementById('opresult');
  out.textContent = 'working…';
  try {
    const result = await api('POST', path);
    out.textContent = 'leadership moved from ' + result.from + ' to ' + result.to + '; writes paused ' + result.pauseMs + ' ms';
  } catch (error) {
    out.textContent = error.message;
  }
}
document.getElementById('switchover').onclick = () => {
  const to = document.getElementById('target').value;
  if (to) operate('/v1/switchover?to=' + encodeURIComponent(to), 'Hand leadership to ' + to);
};
document.getElementById('stepdown').onclick = () => operate('/v1/stepdown', 'Step the leader down');

async function poll() {
  try {
    render(await api('GET', '/v1/cluster'));
    document.getElementById('problem').textContent = '';
  } catch (error) {
    document.getElementById('problem').textContent = 'cannot reach this node: ' + error.message;
  }
  setTimeout(poll, 1000);
}
poll();
</script>
</body>
</html>
`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
