// The admin console's page, stylesheet, script and icon, as strings: tsc carries them into dist/ and the gate serves them itself.

/**
 * The page holds no data: without a token it shows only the prompt. Every asset URL is relative, so
 * the console also works behind a proxy that mounts the admin listener under a prefix.
 */
export const CONSOLE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>conflict-gate console</title>
<link rel="icon" href="console/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="console/app.css">
<script src="console/app.js" defer></script>
</head>
<body>
<header class="bar">
  <h1>conflict-gate <span class="muted">console</span></h1>
  <span id="badge" class="badge" hidden></span>
  <span id="checks" class="checks" hidden></span>
  <span class="grow"></span>
  <span id="updated" class="muted"></span>
  <button id="signout" type="button" hidden>Sign out</button>
</header>
<noscript><p class="panel">The console needs JavaScript.</p></noscript>
<section id="login" class="login" hidden>
  <form id="login-form" class="panel" autocomplete="off">
    <h2>Admin token</h2>
    <p class="muted">Enter <code>GATE_ADMIN_TOKEN</code>. It is kept in this browser tab only (sessionStorage) and sent to this gate alone.</p>
    <input id="token" name="token" type="password" autocomplete="off" spellcheck="false" aria-label="Admin token" required>
    <button type="submit">Open the console</button>
    <p id="login-error" class="error" role="alert"></p>
  </form>
</section>
<main id="app" hidden>
  <p id="offline" class="error panel" role="alert" hidden></p>
  <section id="summary" class="cards"></section>
  <section class="panel">
    <h2>Decisions, last 15 minutes <span class="muted">(per 10 s)</span></h2>
    <div id="chart" class="chart"></div>
    <div id="legend" class="legend"></div>
    <table id="rates" class="grid">
      <thead><tr><th>outcome</th><th>gate</th><th>code</th><th class="num">/s, last min</th><th class="num">last 15 min</th><th class="num">since start</th></tr></thead>
      <tbody></tbody>
    </table>
    <p class="muted small">"since start" is this replica's <code>conflict_gate_decisions_total</code> and <code>conflict_gate_shadow_denials_total</code> on <code>/metrics</code>: both are counted by the same call.</p>
  </section>
  <section class="panel">
    <h2>Last denials <span id="denials-count" class="muted"></span></h2>
    <div class="scroll">
      <table id="denials" class="grid">
        <thead><tr><th>time</th><th>gate</th><th>code</th><th class="num">status</th><th>rule</th><th>method</th><th>path</th><th>client</th></tr></thead>
        <tbody></tbody>
      </table>
    </div>
  </section>
  <div class="two">
    <section class="panel">
      <h2>Hottest resources by conflict denials</h2>
      <table id="conflicts" class="grid">
        <thead><tr><th>resource key</th><th>rule</th><th class="num">denied</th><th class="num">shadowed</th><th>codes</th><th>last</th></tr></thead>
        <tbody></tbody>
      </table>
      <p id="conflicts-note" class="muted small"></p>
    </section>
    <section class="panel">
      <h2>Shadowed denials <span class="muted">(allowed; would be refused in enforce)</span></h2>
      <table id="shadow-counts" class="grid">
        <thead><tr><th>gate</th><th>code</th><th class="num">last 15 min</th><th class="num">since start</th></tr></thead>
        <tbody></tbody>
      </table>
      <div class="scroll short">
        <table id="shadowed" class="grid">
          <thead><tr><th>time</th><th>gate</th><th>code</th><th>rule</th><th>method</th><th>path</th><th>client</th></tr></thead>
          <tbody></tbody>
        </table>
      </div>
    </section>
  </div>
  <section class="panel">
    <h2>Explain a request <span class="muted">(what <code>conflict-gate explain</code> prints; changes nothing in the store)</span></h2>
    <form id="explain-form" class="explain" autocomplete="off">
      <label>method <select id="x-method" name="method">
        <option>GET</option><option>HEAD</option><option>POST</option><option selected>PUT</option><option>PATCH</option><option>DELETE</option><option>OPTIONS</option>
      </select></label>
      <label class="wide">URI <input id="x-uri" name="uri" value="/" spellcheck="false" required></label>
      <label>client IP <input id="x-ip" name="ip" placeholder="127.0.0.1" spellcheck="false"></label>
      <label class="full">headers, one per line <textarea id="x-headers" name="headers" rows="3" spellcheck="false" placeholder="Authorization: Bearer eyJ...&#10;If-Match: &quot;7&quot;"></textarea></label>
      <button type="submit">Explain</button>
    </form>
    <p id="explain-error" class="error" role="alert"></p>
    <div id="explain-result"></div>
  </section>
  <section class="panel">
    <h2>Running config <span id="config-sha" class="muted"></span></h2>
    <div id="config"></div>
  </section>
</main>
</body>
</html>
`;

export const CONSOLE_CSS = `
:root { --bg: #f6f7f9; --panel: #fff; --ink: #1d2330; --muted: #677086; --line: #e2e5ec; --ok: #1a7f37; --bad: #c62828; --warn: #b26a00;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--ink); background: var(--bg); }
* { box-sizing: border-box; }
body { margin: 0; }
h1 { font-size: 18px; margin: 0; }
h2 { font-size: 15px; margin: 0 0 10px; }
code, pre, .mono, td.mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: 12.5px; }
.muted { color: var(--muted); font-weight: normal; }
.small { font-size: 12px; }
.error { color: var(--bad); }
.grow { flex: 1; }
[hidden] { display: none !important; }
.bar { display: flex; align-items: center; gap: 12px; padding: 10px 20px; background: var(--panel); border-bottom: 1px solid var(--line); }
.badge { padding: 3px 10px; border-radius: 12px; font-weight: 600; color: #fff; background: var(--muted); }
.badge.ok { background: var(--ok); } .badge.bad { background: var(--bad); } .badge.warn { background: var(--warn); }
.checks { display: flex; gap: 6px; }
.chip { padding: 2px 8px; border-radius: 10px; border: 1px solid var(--line); font-size: 12px; }
.chip.ok { color: var(--ok); border-color: #b7dfc2; } .chip.bad { color: var(--bad); border-color: #f0b9b9; }
main { padding: 16px 20px 40px; display: flex; flex-direction: column; gap: 16px; max-width: 1500px; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; }
.two { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
@media (max-width: 1000px) { .two { grid-template-columns: 1fr; } }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(190px, 1fr)); gap: 12px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 22px; font-weight: 600; margin: 2px 0; }
.card .value.ok { color: var(--ok); } .card .value.bad { color: var(--bad); } .card .value.warn { color: var(--warn); }
.card .value.mono { font-size: 18px; }
#card-top .value { font-size: 16px; overflow-wrap: break-word; }
.card ul { margin: 4px 0 0; padding: 0; list-style: none; font-size: 12.5px; }
.grid { width: 100%; border-collapse: collapse; }
.grid th, .grid td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
.grid th { color: var(--muted); font-weight: 600; font-size: 12px; }
.grid td.num, .grid th.num { text-align: right; font-variant-numeric: tabular-nums; }
.grid td.path { word-break: break-all; }
.grid td { overflow-wrap: break-word; }
.grid td.nw { white-space: nowrap; }
.grid tr.empty td { color: var(--muted); font-style: italic; }
.scroll { max-height: 420px; overflow: auto; }
.scroll.short { max-height: 220px; margin-top: 10px; }
.chart svg { width: 100%; height: 170px; display: block; }
.chart .axis { fill: var(--muted); font-size: 10px; }
.chart .gridline { stroke: var(--line); }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; margin: 6px 0 10px; font-size: 12px; }
.legend span.sw { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px; vertical-align: -1px; }
.s-allow { fill: #9cc9a6; background: #9cc9a6; }
.p0 { fill: #d1495b; background: #d1495b; } .p1 { fill: #edae49; background: #edae49; } .p2 { fill: #00798c; background: #00798c; }
.p3 { fill: #30638e; background: #30638e; } .p4 { fill: #8e5572; background: #8e5572; } .p5 { fill: #6a994e; background: #6a994e; }
.p6 { fill: #bc4749; background: #bc4749; } .p7 { fill: #7b6d8d; background: #7b6d8d; }
.s-replay { fill: #b9c0cc; background: #b9c0cc; }
.login { display: flex; justify-content: center; padding: 60px 20px; }
.login form { width: 420px; display: flex; flex-direction: column; gap: 10px; }
input, select, textarea, button { font: inherit; padding: 6px 8px; border: 1px solid #c8cdd8; border-radius: 6px; background: #fff; color: inherit; }
button { background: #24305e; color: #fff; border-color: #24305e; cursor: pointer; }
#signout { background: #fff; color: var(--ink); border-color: #c8cdd8; }
.explain { display: grid; grid-template-columns: auto 1fr auto; gap: 8px 12px; align-items: end; }
.explain label { display: flex; flex-direction: column; gap: 3px; font-size: 12px; color: var(--muted); }
.explain label.full { grid-column: 1 / -1; }
.explain button { justify-self: start; }
.result-allow { color: var(--ok); font-weight: 600; } .result-deny { color: var(--bad); font-weight: 600; }
.result-shadow { color: var(--warn); font-weight: 600; } .result-skip, .result-not_reached { color: var(--muted); }
.answer { margin: 10px 0 4px; font-weight: 600; }
pre { background: #f3f4f7; border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; overflow: auto; margin: 6px 0; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0 0 10px; }
dl.kv dt { color: var(--muted); }
dl.kv dd { margin: 0; }
.cfg { display: grid; grid-template-columns: repeat(auto-fit, minmax(540px, 1fr)); gap: 14px 32px; }
.cfg h3 { font-size: 13px; margin: 0 0 6px; }
.mode-shadow { color: var(--warn); font-weight: 600; }
`;

/** The console's behaviour. Everything it shows is set as text (textContent), never parsed as HTML. */
export const CONSOLE_JS = String.raw`'use strict';
(function () {
  var TOKEN_KEY = 'conflict-gate.adminToken';
  var POLL_MS = 2000;
  var SVG = 'http://www.w3.org/2000/svg';
  var state = { token: null, timer: 0, generation: 0, palette: {} };

  function $(id) { return document.getElementById(id); }

  // Builds an element; strings become text nodes, so nothing a client sent is ever parsed as markup.
  function h(tag, attrs) {
    var el = document.createElement(tag);
    setAttrs(el, attrs);
    for (var i = 2; i < arguments.length; i++) add(el, arguments[i]);
    return el;
  }
  function s(tag, attrs) {
    var el = document.createElementNS(SVG, tag);
    setAttrs(el, attrs);
    for (var i = 2; i < arguments.length; i++) add(el, arguments[i]);
    return el;
  }
  function setAttrs(el, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v === undefined || v === null || v === false) return;
      el.setAttribute(k, v === true ? '' : String(v));
    });
  }
  function add(el, c) {
    if (c === undefined || c === null || c === false) return;
    if (Array.isArray(c)) { c.forEach(function (x) { add(el, x); }); return; }
    el.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
  }
  function fill(el) {
    el.replaceChildren();
    for (var i = 1; i < arguments.length; i++) add(el, arguments[i]);
  }

  function time(ms) { return new Date(ms).toLocaleTimeString([], { hour12: false }); }
  function num(n) { return Number(n).toLocaleString('en-US'); }
  function sum(a, from) { var t = 0; for (var i = from || 0; i < a.length; i++) t += a[i]; return t; }
  function rate(n, seconds) { if (seconds <= 0) return '0'; var r = n / seconds; return r === 0 ? '0' : r >= 10 ? r.toFixed(0) : r >= 0.1 ? r.toFixed(2) : r.toFixed(3); }
  function seriesId(x) { return x.outcome + '/' + x.gate + '/' + x.code; }
  function label(x) {
    if (x.outcome === 'allow') return 'allow';
    if (x.outcome === 'replay') return 'replayed (nginx)';
    return x.gate + '/' + x.code + (x.outcome === 'shadow' ? ' (shadow)' : '');
  }
  function client(d) { return d.clientId !== null && d.clientId !== '' ? d.clientId : d.clientIp !== null ? 'ip ' + d.clientIp : ''; }
  function emptyRow(cols, text) { return h('tr', { class: 'empty' }, h('td', { colspan: cols }, text)); }

  // ---- token ------------------------------------------------------------------------------

  function showLogin(message) {
    clearTimeout(state.timer);
    state.generation++;
    state.token = null;
    $('app').hidden = true;
    $('badge').hidden = true;
    $('checks').hidden = true;
    $('signout').hidden = true;
    fill($('updated'));
    $('login').hidden = false;
    fill($('login-error'), message || '');
    var input = $('token');
    input.value = '';
    input.focus();
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    // Nothing the token unlocked stays on the page.
    ['summary', 'chart', 'legend', 'config', 'explain-result', 'config-sha', 'denials-count', 'conflicts-note', 'offline'].forEach(function (id) { fill($(id)); });
    ['rates', 'denials', 'conflicts', 'shadow-counts', 'shadowed'].forEach(function (id) { fill($(id).tBodies[0]); });
    showLogin(message);
  }

  function start(token) {
    state.token = token;
    state.generation++;
    load(state.generation);
  }

  function authHeaders(extra) {
    var headers = { Authorization: 'Bearer ' + state.token };
    if (extra) Object.keys(extra).forEach(function (k) { headers[k] = extra[k]; });
    return headers;
  }

  async function refused(res) {
    var p = null;
    try { p = await res.json(); } catch (e) { p = null; }
    if (res.status === 403 && p && p.code === 'admin_disabled') return 'The admin API is disabled on this gate: start it with GATE_ADMIN_TOKEN set.';
    return 'That token was refused (' + res.status + '). Try again.';
  }

  // ---- polling ----------------------------------------------------------------------------

  async function load(generation) {
    var res;
    try {
      res = await fetch('console/data', { headers: authHeaders(), cache: 'no-store' });
    } catch (e) {
      if (generation !== state.generation) return;
      offline('The gate did not answer at ' + time(Date.now()) + '; retrying.');
      return schedule(generation);
    }
    if (generation !== state.generation) return;
    if (res.status === 401 || res.status === 403) return signOut(await refused(res));
    if (!res.ok) {
      offline('The gate answered ' + res.status + ' at ' + time(Date.now()) + '; retrying.');
      return schedule(generation);
    }
    var data = await res.json();
    if (generation !== state.generation) return;
    $('login').hidden = true;
    $('app').hidden = false;
    $('signout').hidden = false;
    $('offline').hidden = true;
    render(data);
    schedule(generation);
  }

  function schedule(generation) {
    clearTimeout(state.timer);
    state.timer = setTimeout(function () { load(generation); }, POLL_MS);
  }

  function offline(message) {
    var el = $('offline');
    fill(el, message);
    el.hidden = false;
  }

  // ---- rendering --------------------------------------------------------------------------

  function render(d) {
    var a = d.activity;
    var n = a.series.length ? a.series[0].counts.length : 0;
    // The last minute: the last six 10 s buckets, the newest still filling.
    var minuteFrom = Math.max(0, n - 6);
    var minuteS = (a.now - (a.from + minuteFrom * a.bucketMs)) / 1000;
    a.series.forEach(function (x) {
      x.window = sum(x.counts);
      x.minute = sum(x.counts, minuteFrom);
    });
    renderHealth(d, a);
    renderCards(d, a, minuteS);
    renderChart(a);
    renderRates(a, minuteS);
    renderDenials(a);
    renderConflicts(d);
    renderShadow(a);
    renderConfig(d.config);
    fill($('updated'), 'updated ' + time(a.now));
  }

  var CHECK_WORDS = { store: ['store up', 'store down'], keys: ['keys loaded', 'keys not loaded'] };

  function renderHealth(d) {
    var hl = d.health;
    var badge = $('badge');
    var degraded = typeof hl.status === 'string' && hl.status === 'degraded';
    badge.className = 'badge ' + (hl.ready ? (degraded ? 'warn' : 'ok') : 'bad');
    fill(badge, hl.ready ? (degraded ? 'Ready (degraded)' : 'Ready') : 'Not ready');
    badge.setAttribute('data-ready', String(hl.ready));
    badge.hidden = false;
    var chips = Object.keys(hl.checks || {}).map(function (k) {
      var ok = hl.checks[k] === true;
      var words = CHECK_WORDS[k] || [k + ' ok', k + ' failing'];
      return h('span', { class: 'chip ' + (ok ? 'ok' : 'bad'), 'data-check': k, 'data-ok': String(ok) }, ok ? words[0] : words[1]);
    });
    fill($('checks'), chips);
    $('checks').hidden = false;
  }

  function card(labelText, value, cls, extra, id) {
    return h('div', { class: 'card', id: id }, h('div', { class: 'label' }, labelText), h('div', { class: 'value ' + (cls || '') }, value), extra);
  }

  function renderCards(d, a, minuteS) {
    var allow = 0, denyW = 0, denyMin = 0, allMin = 0, shadowW = 0;
    var denies = [];
    a.series.forEach(function (x) {
      if (x.outcome === 'allow') { allow += x.window; allMin += x.minute; }
      if (x.outcome === 'deny') { denyW += x.window; denyMin += x.minute; allMin += x.minute; if (x.window > 0) denies.push(x); }
      if (x.outcome === 'shadow') shadowW += x.window;
    });
    denies.sort(function (p, q) { return q.window - p.window; });
    var total = allow + denyW;
    var hl = d.health;
    fill($('summary'),
      card('/readyz', hl.ready ? '200 ready' : '503 not ready', hl.ready ? 'ok' : 'bad',
        h('ul', null, Object.keys(hl.checks || {}).map(function (k) { return h('li', null, (hl.checks[k] ? '✓ ' : '✗ ') + ((CHECK_WORDS[k] || [k, k])[hl.checks[k] ? 0 : 1])); }), keysLine(d.keys)), 'card-ready'),
      card('decisions /s, last min', rate(allMin, minuteS), '', h('div', { class: 'muted small' }, num(total) + ' in the last 15 min'), 'card-rate'),
      card('refused, last 15 min', num(denyW), denyW > 0 ? 'bad' : '',
        h('div', { class: 'muted small' }, total > 0 ? (100 * denyW / total).toFixed(1) + ' % of decisions' : 'no traffic'), 'card-denied'),
      card('refusing most', denies.length ? denies[0].code : 'nothing', '',
        h('ul', null, denies.slice(0, 3).map(function (x) { return h('li', null, num(x.window) + ' × ' + x.gate + '/' + x.code); })), 'card-top'),
      card('shadowed, last 15 min', num(shadowW), shadowW > 0 ? 'warn' : '', h('div', { class: 'muted small' }, 'allowed; enforce would refuse'), 'card-shadow'),
      card('config', d.config && d.config.sha256 ? d.config.sha256 : 'unknown', 'mono', h('div', { class: 'muted small' }, 'counting since ' + time(a.since)), 'card-config'));
  }

  function keysLine(k) {
    if (!k) return null;
    var text = k.keys + ' signing key' + (k.keys === 1 ? '' : 's') + (k.lastSuccessAt ? ', loaded ' + time(k.lastSuccessAt) : '');
    if (k.refreshes && k.refreshes.error > 0) text += ', ' + k.refreshes.error + ' failed JWKS fetch' + (k.refreshes.error === 1 ? '' : 'es');
    return h('li', { class: 'muted', id: 'keys-line' }, text);
  }

  function paletteClass(id) {
    if (!(id in state.palette)) state.palette[id] = 'p' + (Object.keys(state.palette).length % 8);
    return state.palette[id];
  }

  function chartSeries(a) {
    var allow = a.series.filter(function (x) { return x.outcome === 'allow'; });
    var denies = a.series.filter(function (x) { return x.outcome === 'deny'; }).sort(function (p, q) { return q.total - p.total; });
    return allow.map(function (x) { return { x: x, cls: 's-allow' }; })
      .concat(denies.map(function (x) { return { x: x, cls: paletteClass(seriesId(x)) }; }));
  }

  function renderChart(a) {
    var series = chartSeries(a);
    var n = a.series.length ? a.series[0].counts.length : 0;
    var W = 900, H = 150, top = 8, left = 34, bottom = 16;
    var max = 1;
    for (var i = 0; i < n; i++) {
      var t = 0;
      series.forEach(function (e) { t += e.x.counts[i]; });
      if (t > max) max = t;
    }
    var plotH = H - top - bottom, bw = (W - left) / Math.max(n, 1);
    var svg = s('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': 'decisions per 10 seconds over the last 15 minutes', preserveAspectRatio: 'none' });
    [0, 0.5, 1].forEach(function (f) {
      var y = top + plotH * (1 - f);
      svg.appendChild(s('line', { class: 'gridline', x1: left, x2: W, y1: y, y2: y }));
      svg.appendChild(s('text', { class: 'axis', x: left - 4, y: y + 3, 'text-anchor': 'end' }, String(Math.round(max * f))));
    });
    for (var b = 0; b < n; b++) {
      var y0 = top + plotH;
      series.forEach(function (e) {
        var c = e.x.counts[b];
        if (!c) return;
        var hgt = plotH * c / max;
        y0 -= hgt;
        svg.appendChild(s('rect', { class: e.cls, x: (left + b * bw + 0.5).toFixed(1), y: y0.toFixed(1), width: Math.max(bw - 1, 1).toFixed(1), height: hgt.toFixed(1) },
          s('title', null, label(e.x) + ': ' + c + ' at ' + time(a.from + b * a.bucketMs))));
      });
    }
    svg.appendChild(s('text', { class: 'axis', x: left, y: H - 3 }, '−15 min'));
    svg.appendChild(s('text', { class: 'axis', x: W, y: H - 3, 'text-anchor': 'end' }, 'now'));
    fill($('chart'), svg);
    fill($('legend'), series.length ? series.map(function (e) { return h('span', null, h('span', { class: 'sw ' + e.cls }), label(e.x)); }) : h('span', { class: 'muted' }, 'no decisions yet'));
  }

  var OUTCOME_ORDER = { allow: 0, deny: 1, shadow: 2, replay: 3 };

  function renderRates(a, minuteS) {
    var rows = a.series.slice().sort(function (p, q) { return OUTCOME_ORDER[p.outcome] - OUTCOME_ORDER[q.outcome] || q.total - p.total || seriesId(p).localeCompare(seriesId(q)); });
    fill($('rates').tBodies[0], rows.map(function (x) {
      return h('tr', { 'data-series': seriesId(x) },
        h('td', null, x.outcome), h('td', null, x.gate), h('td', null, x.code),
        h('td', { class: 'num', 'data-col': 'rate' }, rate(x.minute, minuteS)),
        h('td', { class: 'num', 'data-col': 'window' }, num(x.window)),
        h('td', { class: 'num', 'data-col': 'total' }, num(x.total)));
    }));
  }

  function denialRow(d, withStatus) {
    return h('tr', null,
      h('td', { class: 'mono nw' }, time(d.at)), h('td', { class: 'nw' }, d.gate), h('td', { class: 'nw' }, d.code),
      withStatus ? h('td', { class: 'num' }, d.status) : null,
      h('td', { class: 'mono' }, d.rule === null ? '' : d.rule),
      h('td', null, d.method === null ? '' : d.method),
      h('td', { class: 'mono path' }, d.path === null ? '' : d.path),
      h('td', { class: 'mono' }, client(d)));
  }

  function renderDenials(a) {
    fill($('denials').tBodies[0], a.denials.length ? a.denials.map(function (d) { return denialRow(d, true); }) : emptyRow(8, 'No denial since the gate started.'));
    fill($('denials-count'), '(' + a.denials.length + ' most recent, newest first; up to 200)');
  }

  function renderConflicts(d) {
    var c = d.conflicts;
    fill($('conflicts').tBodies[0], c.top.length ? c.top.map(function (e) {
      return h('tr', null,
        h('td', { class: 'mono path' }, e.key), h('td', { class: 'mono' }, e.rule === null ? '' : e.rule),
        h('td', { class: 'num' }, num(e.denied), e.error > 0 ? h('span', { class: 'muted', title: 'tracked since it displaced a key with ' + e.error + ' denials' }, ' +≤' + e.error) : null),
        h('td', { class: 'num' }, num(e.shadowed)),
        h('td', { class: 'small' }, Object.keys(e.codes).map(function (k) { return k + ' ×' + e.codes[k]; }).join(', ')),
        h('td', { class: 'mono' }, time(e.lastAt)));
    }) : emptyRow(6, 'No conflict denial since the gate started.'));
    fill($('conflicts-note'), c.note);
  }

  function renderShadow(a) {
    var rows = a.series.filter(function (x) { return x.outcome === 'shadow'; }).sort(function (p, q) { return q.total - p.total; });
    fill($('shadow-counts').tBodies[0], rows.length ? rows.map(function (x) {
      return h('tr', { 'data-series': seriesId(x) }, h('td', null, x.gate), h('td', null, x.code), h('td', { class: 'num', 'data-col': 'window' }, num(x.window)), h('td', { class: 'num', 'data-col': 'total' }, num(x.total)));
    }) : emptyRow(4, 'Nothing shadowed: every rule enforces, or none would have refused.'));
    fill($('shadowed').tBodies[0], a.shadowed.length ? a.shadowed.map(function (d) { return denialRow(d, false); }) : emptyRow(7, 'No shadowed denial yet.'));
  }

  // ---- config -----------------------------------------------------------------------------

  function kv(pairs) {
    return h('dl', { class: 'kv' }, pairs.map(function (p) { return [h('dt', null, p[0]), h('dd', null, p[1])]; }));
  }
  function table(head, rows, empty) {
    return h('table', { class: 'grid' }, h('thead', null, h('tr', null, head.map(function (x) { return h('th', null, x); }))),
      h('tbody', null, rows.length ? rows : emptyRow(head.length, empty)));
  }
  function mode(m) { return h('span', { class: m === 'shadow' ? 'mode-shadow' : '' }, m); }
  function methods(m) { return m === null ? 'any' : m.join(','); }
  function ms(v) { return v % 1000 === 0 ? v / 1000 + 's' : v + 'ms'; }

  function renderConfig(c) {
    if (!c) { fill($('config'), h('p', { class: 'muted' }, 'No config summary: this gate was not built from a config.')); fill($('config-sha')); return; }
    fill($('config-sha'), 'sha256 ' + (c.sha256 || 'unknown'));
    var a = c.auth, r = c.rateLimit, k = c.conflict, st = c.store;
    var withPaths = r.rules.some(function (x) { return x.path !== null; });
    fill($('config'), h('div', { class: 'cfg' },
      h('div', null, h('h3', null, 'auth'), kv([
        ['keys', a.keys], ['algorithms', a.algorithms.join(', ')], ['issuer', a.issuer.join(', ') || '(not checked)'],
        ['audience', a.audience.join(', ') || '(not checked)'], ['client id claim', a.clientIdClaim],
        ['public routes', a.publicRoutes.join(', ') || 'none'],
        ['forwarded claims', a.forwardClaims.map(function (f) { return f.header + ' ← ' + f.claim; }).join(', ') || 'none']]),
        table(['required scopes: rule', 'scopes', 'mode'], a.requireScopes.map(function (x) { return h('tr', null, h('td', { class: 'mono' }, x.rule), h('td', null, x.scopes.join(' ')), h('td', null, mode(x.mode))); }), 'no scope rule')),
      h('div', null, h('h3', null, 'rate limit'), kv([['mode', mode(r.mode)], ['when the store fails', r.onStoreError]]),
        table(['rule', 'methods'].concat(withPaths ? ['path'] : [], ['limit', 'by', 'mode']), r.rules.map(function (x) {
          return h('tr', null, h('td', { class: 'mono' }, x.name), h('td', null, methods(x.methods)), withPaths ? h('td', { class: 'mono' }, x.path === null ? '' : x.path) : null,
            h('td', null, x.limit + ' / ' + x.windowS + 's' + (x.overrides ? ' (+' + x.overrides + ' overrides)' : '')), h('td', null, x.by), h('td', null, mode(x.mode)));
        }), 'no rule: nothing is limited')),
      h('div', null, h('h3', null, 'conflict'), kv([
        ['mode', mode(k.mode)], ['when the store fails', k.onStoreError], ['unknown resource', k.unknownResource],
        ['If-Match denial status', String(k.ifMatchStatus)], ['claim mode', k.claim.enabled ? 'on, lease ' + ms(k.claim.leaseMs) : 'off']]),
        table(['resource pattern', 'methods', 'requires', 'mode'], k.resources.map(function (x) {
          return h('tr', null, h('td', { class: 'mono' }, x.pattern), h('td', null, methods(x.methods)), h('td', null, x.require), h('td', null, mode(x.mode)));
        }), 'no resource rule: no write is checked')),
      h('div', null, h('h3', null, 'store and server'), kv([
        ['store', st.mode + (st.endpoints.length ? ' ' + st.endpoints.join(', ') : '') + (st.tls ? ' (TLS)' : '')], ['key prefix', st.keyPrefix],
        ['command timeout', ms(st.commandTimeoutMs)], ['path parameters (;)', c.server.pathParameters],
        ['case-sensitive paths', String(c.server.caseSensitive)], ['method override headers', c.server.methodOverride],
        ['watch config', String(c.server.watchConfig)]]))));
  }

  // ---- explain ----------------------------------------------------------------------------

  function parseHeaders(text) {
    var out = {};
    var lines = text.split(/\r?\n/);
    for (var i = 0; i < lines.length; i++) {
      var line = lines[i].trim();
      if (line === '') continue;
      var m = /^([A-Za-z0-9!#$%&'*+.^_|~-]+):[ \t]*(.*)$/.exec(line);
      if (!m) throw new Error('Line ' + (i + 1) + ' is not "Name: value".');
      out[m[1]] = m[2];
    }
    return out;
  }

  async function explain(ev) {
    ev.preventDefault();
    fill($('explain-error'));
    var body;
    try {
      body = { method: $('x-method').value, uri: $('x-uri').value.trim(), headers: parseHeaders($('x-headers').value) };
    } catch (e) {
      fill($('explain-error'), e.message);
      return;
    }
    var ip = $('x-ip').value.trim();
    if (ip !== '') body.ip = ip;
    var res;
    try {
      res = await fetch('explain', { method: 'POST', headers: authHeaders({ 'Content-Type': 'application/json' }), body: JSON.stringify(body), cache: 'no-store' });
    } catch (e) {
      fill($('explain-error'), 'The gate did not answer.');
      return;
    }
    if (res.status === 401 || res.status === 403) return signOut(await refused(res));
    var data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok || data === null) {
      fill($('explain-error'), (data && data.detail) || 'The gate answered ' + res.status + '.');
      fill($('explain-result'));
      return;
    }
    renderTrace(data);
  }

  function seen(obj) {
    return Object.keys(obj || {}).map(function (k) { var v = obj[k]; return k + '=' + (v === null ? 'none' : String(v)); }).join(', ');
  }

  function renderTrace(t) {
    var req = t.request;
    var rows = t.gates.map(function (g) {
      return h('tr', { 'data-gate': g.gate },
        h('td', { class: 'nw' }, g.gate),
        h('td', { class: 'nw result-' + g.result, 'data-col': 'result' }, g.result),
        h('td', { class: 'mono' }, g.rule ? g.rule : '', g.rule && g.mode === 'shadow' ? ' (shadow)' : ''),
        h('td', { class: 'nw', 'data-col': 'code' }, g.code || ''),
        h('td', null, g.detail || ''),
        h('td', { class: 'mono small' }, seen(g.seen)));
    });
    var ans = t.answer;
    fill($('explain-result'),
      h('p', { class: 'muted mono' }, req.method + ' ' + req.uri + (req.path && req.path !== req.uri ? '  (path ' + req.path + ')' : '') + '  client ' + req.clientIp),
      h('table', { class: 'grid', id: 'trace' },
        h('thead', null, h('tr', null, ['gate', 'result', 'rule', 'code', 'why', 'read'].map(function (x) { return h('th', null, x); }))),
        h('tbody', null, rows)),
      h('p', { class: 'answer ' + (ans.status < 300 ? 'result-allow' : 'result-deny'), id: 'answer' }, 'answer: ' + ans.status + (ans.code ? ' ' + ans.code : '')),
      h('pre', null, Object.keys(ans.headers).map(function (k) { return k + ': ' + ans.headers[k]; }).join('\n') + (ans.body !== undefined ? '\n\n' + JSON.stringify(ans.body, null, 2) : '')),
      h('details', null, h('summary', null, 'JSON, as conflict-gate explain --json prints it'), h('pre', { id: 'explain-json' }, JSON.stringify(t, null, 2))));
  }

  // ---- start ------------------------------------------------------------------------------

  document.addEventListener('DOMContentLoaded', function () {
    $('login-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var token = $('token').value.trim();
      if (token === '') return;
      sessionStorage.setItem(TOKEN_KEY, token);
      $('token').value = '';
      start(token);
    });
    $('signout').addEventListener('click', function () { signOut(''); });
    $('explain-form').addEventListener('submit', explain);
    var kept = sessionStorage.getItem(TOKEN_KEY);
    if (kept) start(kept); else showLogin('');
  });
})();
`;

/** A small mark for the tab, so the browser does not ask for /favicon.ico (a 404 on the admin listener). */
export const FAVICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#24305e"/><path d="M4 8.5l2.5 2.5L12 5" stroke="#9cc9a6" stroke-width="2" fill="none"/></svg>`;
