import type { ServerResponse } from 'node:http'

/**
 * `GET /`: a page for a person (DESIGN.md "The local HTTP API"): this node's peer ID, its
 * peers with bytes each way and banned state, its bundles with refs and progress, and
 * transfer rates, and the fleet as its nodes' signed statuses tell it (a table of nodes, stale
 * ones marked, and per bundle a bar "N of M nodes complete"). One self-contained document (no scripts or styles from elsewhere: edge
 * nodes are often offline); its script polls `/status.json` (read-only, served with the page) every second and builds the
 * tables with textContent, so a ref or peer address can never inject markup.
 */
export function sendStatusPage (res: ServerResponse, head: boolean): void {
  const body = Buffer.from(STATUS_PAGE_HTML)
  res.writeHead(200, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': body.length,
    'Cache-Control': 'no-store',
    // Nothing but our own inline script and style, and requests to this origin.
    'Content-Security-Policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
    'X-Content-Type-Options': 'nosniff',
  })
  res.end(head ? undefined : body)
}

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>shoal</title>
<style>
  :root { --bg: #f6f7f9; --card: #fff; --ink: #1c2430; --muted: #647084; --line: #e3e7ee; --accent: #1f7a8c; --ok: #2e8b57; --bad: #c0392b; --warn: #b7791f; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
  header { background: #0f3d4a; color: #fff; padding: 14px 24px; display: flex; align-items: baseline; gap: 16px; flex-wrap: wrap; }
  header h1 { margin: 0; font-size: 20px; letter-spacing: .5px; }
  header .id { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; opacity: .85; word-break: break-all; }
  .badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 11px; font-weight: 600; background: #e6f2f4; color: var(--accent); }
  header .badge { background: #ffffff22; color: #fff; }
  .badge.bad { background: #fdecea; color: var(--bad); }
  .badge.ok { background: #e8f5ee; color: var(--ok); }
  .badge.muted { background: #eef0f4; color: var(--muted); }
  main { padding: 20px 24px; max-width: 1200px; }
  .tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; margin-bottom: 20px; }
  .tile { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
  .tile .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .4px; }
  .tile .value { font-size: 22px; font-weight: 600; margin-top: 2px; font-variant-numeric: tabular-nums; }
  .tile .sub { color: var(--muted); font-size: 12px; }
  section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; margin-bottom: 20px; overflow: hidden; }
  section h2 { font-size: 15px; margin: 0; padding: 10px 14px; border-bottom: 1px solid var(--line); display: flex; justify-content: space-between; }
  section h2 .count { color: var(--muted); font-weight: 400; }
  table { width: 100%; border-collapse: collapse; }
  th, td { text-align: left; padding: 8px 14px; border-bottom: 1px solid var(--line); vertical-align: top; }
  th { font-size: 12px; color: var(--muted); font-weight: 600; background: #fafbfc; }
  tr:last-child td { border-bottom: none; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  th.num { text-align: right; }
  .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; word-break: break-all; }
  .refs div { font-size: 13px; }
  .bar { height: 8px; background: #e9edf2; border-radius: 4px; overflow: hidden; min-width: 120px; margin-top: 4px; }
  .bar > span { display: block; height: 100%; background: var(--accent); transition: width .4s; }
  .bar.done > span { background: var(--ok); }
  .empty { color: var(--muted); padding: 14px; }
  .stale { color: var(--bad); font-size: 12px; margin-left: auto; }
  footer { color: var(--muted); font-size: 12px; padding: 0 24px 24px; }
</style>
</head>
<body>
<header>
  <h1>shoal</h1>
  <span class="badge" id="role">node</span>
  <span class="id" id="peer-id">loading…</span>
  <span class="stale" id="stale"></span>
</header>
<main>
  <div class="tiles">
    <div class="tile"><div class="label">Download</div><div class="value" id="rate-down">–</div><div class="sub" id="total-down"></div></div>
    <div class="tile"><div class="label">Upload</div><div class="value" id="rate-up">–</div><div class="sub" id="total-up"></div></div>
    <div class="tile"><div class="label">Peers</div><div class="value" id="peer-count">–</div><div class="sub" id="ban-count"></div></div>
    <div class="tile"><div class="label">Bundles</div><div class="value" id="bundle-count">–</div><div class="sub" id="bundle-bytes"></div></div>
  </div>
  <section>
    <h2>Bundles <span class="count" id="bundles-note"></span></h2>
    <table><thead><tr><th>Bundle</th><th>Refs</th><th>Progress</th><th class="num">Size</th></tr></thead><tbody id="bundles"></tbody></table>
  </section>
  <section>
    <h2>Peers <span class="count" id="peers-note"></span></h2>
    <table><thead><tr><th>Peer</th><th>State</th><th class="num">Received</th><th class="num">Sent</th><th class="num">Rate in</th></tr></thead><tbody id="peers"></tbody></table>
  </section>
  <section>
    <h2>Spread across the fleet <span class="count" id="spread-note"></span></h2>
    <table><thead><tr><th>Bundle</th><th>Nodes complete</th></tr></thead><tbody id="spread"></tbody></table>
  </section>
  <section>
    <h2>Fleet <span class="count" id="fleet-note"></span></h2>
    <table><thead><tr><th>Node</th><th>State</th><th>Labels</th><th>Version</th><th class="num">Bundles</th><th class="num">Free disk</th><th class="num">Last seen</th></tr></thead><tbody id="fleet"></tbody></table>
  </section>
</main>
<footer>Addresses: <span class="mono" id="addresses"></span> · refreshed every second from <span class="mono">/status.json</span> · <a href="/metrics">/metrics</a></footer>
<script>
(function () {
  'use strict';
  var last = null;
  function $(id) { return document.getElementById(id); }
  function bytes(n) {
    if (!(n >= 0)) return '–';
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n.toFixed(0) : n.toFixed(n < 10 ? 2 : 1)) + ' ' + units[i];
  }
  function rate(n) { return bytes(n) + '/s'; }
  function cell(row, text, cls) {
    var td = document.createElement('td');
    if (cls) td.className = cls;
    if (text instanceof Node) td.appendChild(text); else td.textContent = text;
    row.appendChild(td);
    return td;
  }
  function badge(text, cls) {
    var span = document.createElement('span');
    span.className = 'badge ' + (cls || '');
    span.textContent = text;
    return span;
  }
  /* A label over a bar filled to share (0 to 1), green when done. */
  function progress(text, share, done) {
    var wrap = document.createElement('div');
    var label = document.createElement('div');
    label.textContent = text;
    var bar = document.createElement('div');
    bar.className = 'bar' + (done ? ' done' : '');
    var fill = document.createElement('span');
    fill.style.width = (share * 100).toFixed(1) + '%';
    bar.appendChild(fill);
    wrap.appendChild(label);
    wrap.appendChild(bar);
    return wrap;
  }
  function short(id) { return id.length > 20 ? id.slice(0, 12) + '…' + id.slice(-6) : id; }
  function empty(body, cols, text) {
    var tr = document.createElement('tr');
    var td = cell(tr, text, 'empty');
    td.colSpan = cols;
    body.appendChild(tr);
  }
  function render(status, now) {
    var stats = status.stats || {};
    $('peer-id').textContent = status.peerId;
    $('peer-id').title = 'peer ID';
    $('role').textContent = status.gateway ? 'gateway' : 'edge';
    $('addresses').textContent = (status.addresses || []).join('  ');
    var dt = last ? (now - last.at) / 1000 : 0;
    var down = dt > 0 ? Math.max(0, (stats.bytesDownloaded - last.stats.bytesDownloaded) / dt) : 0;
    var up = dt > 0 ? Math.max(0, (stats.bytesUploaded - last.stats.bytesUploaded) / dt) : 0;
    $('rate-down').textContent = rate(down);
    $('rate-up').textContent = rate(up);
    $('total-down').textContent = bytes(stats.bytesDownloaded) + ' from peers';
    $('total-up').textContent = bytes(stats.bytesUploaded) + ' to peers';
    var peers = status.peers || [];
    var banned = peers.filter(function (p) { return p.banned; }).length;
    var connected = peers.filter(function (p) { return p.connected !== false && !p.banned; }).length;
    $('peer-count').textContent = String(connected);
    $('ban-count').textContent = banned + ' banned · ' + (stats.bans || 0) + ' bans so far';
    var bundles = status.bundles || [];
    var total = bundles.reduce(function (s, b) { return s + b.bytes; }, 0);
    var complete = bundles.filter(function (b) { return b.complete; }).length;
    $('bundle-count').textContent = String(bundles.length);
    $('bundle-bytes').textContent = bytes(total) + ' · ' + complete + ' complete';
    $('bundles-note').textContent = bundles.length + ' held';
    $('peers-note').textContent = peers.length + ' known';

    var body = $('bundles');
    body.textContent = '';
    if (bundles.length === 0) empty(body, 4, 'No bundles yet: push one, pull one, or ask for an image.');
    bundles.forEach(function (b) {
      var tr = document.createElement('tr');
      var idCell = cell(tr, b.id, 'mono');
      idCell.title = 'bundle ID';
      if (b.pinned) { idCell.appendChild(document.createTextNode(' ')); idCell.appendChild(badge('pinned', 'muted')); }
      var refs = document.createElement('div');
      refs.className = 'refs';
      (b.refs.length ? b.refs : ['(no ref)']).forEach(function (r) { var d = document.createElement('div'); d.textContent = r; refs.appendChild(d); });
      cell(tr, refs);
      var share = b.bytes > 0 ? b.presentBytes / b.bytes : 1;
      cell(tr, progress(b.complete ? 'complete' : (share * 100).toFixed(1) + ' %  (' + bytes(b.presentBytes) + ')', share, b.complete));
      cell(tr, bytes(b.bytes), 'num');
      body.appendChild(tr);
    });

    var peerBody = $('peers');
    peerBody.textContent = '';
    if (peers.length === 0) empty(peerBody, 5, 'No peers: check --bootstrap, mDNS, or the swarm key.');
    var before = {};
    if (last) (last.peers || []).forEach(function (p) { before[p.id] = p; });
    peers.forEach(function (p) {
      var tr = document.createElement('tr');
      var id = cell(tr, short(p.id), 'mono');
      id.title = p.id + '\\n' + (p.addresses || []).join('\\n');
      var state = document.createElement('span');
      if (p.banned) state.appendChild(badge('banned', 'bad'));
      else if (p.connected === false) state.appendChild(badge('disconnected', 'muted'));
      else state.appendChild(badge('connected', 'ok'));
      if (p.gateway) { state.appendChild(document.createTextNode(' ')); state.appendChild(badge('gateway')); }
      cell(tr, state);
      cell(tr, bytes(p.bytesDownloaded), 'num');
      cell(tr, bytes(p.bytesUploaded), 'num');
      var prev = before[p.id];
      var r = prev && dt > 0 ? Math.max(0, (p.bytesDownloaded - prev.bytesDownloaded) / dt) : (p.rate || 0);
      cell(tr, rate(r), 'num');
      peerBody.appendChild(tr);
    });
    renderFleet(status.fleet || { known: 0, stale: 0, nodes: [], truncated: false, bundles: [] });
    last = { at: now, stats: { bytesDownloaded: stats.bytesDownloaded, bytesUploaded: stats.bytesUploaded }, peers: peers };
  }
  function ago(ms) { return ms < 1000 ? 'now' : ms < 120000 ? Math.round(ms / 1000) + ' s ago' : Math.round(ms / 60000) + ' min ago'; }
  function renderFleet(fleet) {
    $('fleet-note').textContent = fleet.known + ' nodes · ' + fleet.stale + ' stale' + (fleet.truncated ? ' · first ' + fleet.nodes.length + ' shown (shoal fleet lists all)' : '');
    $('spread-note').textContent = fleet.bundles.length + ' bundles';
    var spread = $('spread');
    spread.textContent = '';
    if (fleet.bundles.length === 0) empty(spread, 2, 'No node has said it holds a bundle yet.');
    fleet.bundles.forEach(function (b) {
      var tr = document.createElement('tr');
      var id = cell(tr, b.refs.length ? b.refs.join(' ') : short(b.id), b.refs.length ? '' : 'mono');
      id.title = b.id;
      var share = b.total > 0 ? b.complete / b.total : 0;
      var text = b.complete + ' of ' + b.total + ' nodes complete' + (b.partial ? ' · ' + b.partial + ' arriving' : '') + (b.preheat ? ' · preheat of ' + (b.preheat.selector || 'every node') : '');
      cell(tr, progress(text, share, b.total > 0 && b.complete === b.total));
      spread.appendChild(tr);
    });
    var body = $('fleet');
    body.textContent = '';
    if (fleet.nodes.length === 0) empty(body, 7, 'No statuses yet.');
    fleet.nodes.forEach(function (n) {
      var tr = document.createElement('tr');
      var id = cell(tr, short(n.peerId), 'mono');
      id.title = n.peerId;
      cell(tr, n.self ? badge('this node', 'muted') : n.stale ? badge('stale', 'bad') : badge('live', 'ok'));
      cell(tr, Object.keys(n.labels).sort().map(function (k) { return k + '=' + n.labels[k]; }).join(', '));
      cell(tr, n.version);
      cell(tr, n.completeCount + (n.partialCount ? ' + ' + n.partialCount + ' arriving' : ''), 'num');
      cell(tr, bytes(n.freeBytes), 'num');
      cell(tr, n.self ? '–' : ago(n.lastSeenMs), 'num');
      body.appendChild(tr);
    });
  }
  function poll() {
    fetch('/status.json', { cache: 'no-store' })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(function (status) { $('stale').textContent = ''; render(status, Date.now()); })
      .catch(function (err) { $('stale').textContent = 'daemon not answering (' + err.message + ')'; })
      .then(function () { setTimeout(poll, 1000); });
  }
  poll();
})();
</script>
</body>
</html>
`
