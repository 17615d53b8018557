/* m2bridge console: live cards per watcher from the server's event stream (/events), uPlot
 * charts over the last points, and the control buttons (POST /api/command with the CSRF header).
 * Plain JS, no build step. Tests find things by data attributes: [data-watcher], [data-pid],
 * button[data-command], .chart[data-chart] with data-points / data-last / data-max. */
"use strict";

const MAX_POINTS = 600;
const RECONNECT_MS = 3000;
const CHART_HEIGHT = 150;
const COLORS = ["#4fc3f7", "#81c784", "#ffb74d", "#e57373", "#ba68c8", "#4db6ac", "#f06292", "#dce775"];
const csrf = document.querySelector('meta[name="m2bridge-csrf"]').content;

/* Charts of a watcher card. `counters`: only for watchers whose processes publish counters;
 * `mongrel2`: only for a Mongrel2 watcher (its figures come from the point's `mongrel2`);
 * `perWid`: one series per process slot, from that key of the point. */
const WATCHER_CHARTS = [
  { id: "rps", title: "Requests / s", counters: true, series: [
      { label: "req/s", get: (w) => w.rps },
      { label: "5xx/s", get: (w) => w.errors },
      { label: "503/s", get: (w) => w.rejected },
      { label: "504/s", get: (w) => w.timed_out },
  ] },
  { id: "inflight", title: "In flight", counters: true, series: [
      { label: "in flight", get: (w) => w.in_flight },
  ] },
  { id: "latency", title: "Latency (ms)", counters: true, empty: "no request timed in this window", series: [
      { label: "app p50", get: (w) => ms(w.app_time && w.app_time.p50) },
      { label: "app p90", get: (w) => ms(w.app_time && w.app_time.p90) },
      { label: "app p99", get: (w) => ms(w.app_time && w.app_time.p99) },
      { label: "queue p99", get: (w) => ms(w.queue_time && w.queue_time.p99) },
  ] },
  { id: "cpu", title: "CPU % per process", perWid: "cpu_by_wid" },
  { id: "rss", title: "RSS per process", perWid: "rss_by_wid", bytes: true },
  { id: "connections", title: "Mongrel2 connections", mongrel2: true, series: [
      { label: "open connections", get: (m) => m.connections },
      { label: "tasks", get: (m) => m.tasks },
  ] },
];

let points = [];          // derived points, oldest first (the server's history, then updates)
let source = null;
let staleTimer = null;
const charts = new Map(); // chart element -> {plot, key (its series), resize (observer)}

/* ---------- formatting ---------- */

function ms(seconds) { return seconds == null ? null : seconds * 1000; }

function bytes(n) {
  if (n == null) return "–";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n.toFixed(0)) + " " + units[i];
}

function num(n, digits = 1) {
  if (n == null) return "–";
  return Number.isInteger(n) ? String(n) : n.toFixed(digits);
}

function age(seconds) {
  if (seconds == null) return "–";
  const s = Math.floor(seconds);
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
  if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
  return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
}

function latency(seconds) {
  if (seconds == null) return "–";
  return seconds < 1 ? (seconds * 1000).toFixed(seconds < 0.01 ? 2 : 1) + " ms" : seconds.toFixed(2) + " s";
}

function field(root, name) { return root.querySelector(`[data-field="${name}"]`); }

function setText(el, text) { if (el && el.textContent !== text) el.textContent = text; }

/* ---------- the event stream ---------- */

function connect() {
  setLink("connecting", "connecting");
  source = new EventSource("/events");
  source.addEventListener("open", () => setLink("live", "live"));
  source.addEventListener("history", (e) => {
    const data = JSON.parse(e.data);
    points = data.points.slice(-MAX_POINTS);
    render(data.state);
  });
  source.addEventListener("update", (e) => {
    const data = JSON.parse(e.data);
    if (data.point) {
      points.push(data.point);
      if (points.length > MAX_POINTS) points.splice(0, points.length - MAX_POINTS);
    }
    render(data.state);
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) {
      setLink("down", "disconnected – retrying");
      source.close();
      setTimeout(connect, RECONNECT_MS);
    } else {
      setLink("connecting", "reconnecting");
    }
  });
}

function setLink(state, text) {
  const el = document.getElementById("link");
  el.dataset.link = state;
  setText(el, text);
}

/* ---------- rendering ---------- */

function render(state) {
  setLink("live", "live");
  renderHeader(state);
  const statuses = new Map((state.status.watchers || []).map((w) => [w.name, w]));
  const servers = new Map((state.stats.mongrel2 || []).map((m) => [m.watcher, m]));
  const seen = new Set();
  for (const watcher of state.stats.watchers || []) {
    seen.add(watcher.name);
    renderWatcher(watcher, statuses.get(watcher.name) || {}, servers.get(watcher.name));
  }
  removeMissing(document.getElementById("watchers"), seen);
  clearTimeout(staleTimer);
  staleTimer = setTimeout(() => setLink("connecting", "no update – waiting"), (state.interval || 1) * 4000);
}

function renderHeader(state) {
  const sup = state.supervisor || {};
  const parts = [];
  if (sup.stack) parts.push("stack " + sup.stack);
  if (sup.pid) parts.push("supervisor pid " + sup.pid);
  if (sup.cpu != null) parts.push("CPU " + num(sup.cpu) + "%");
  if (sup.rss != null) parts.push("RSS " + bytes(sup.rss));
  if (sup.age != null) parts.push("up " + age(sup.age));
  setText(document.getElementById("stack"), parts.join(" · ") || state.endpoint || "");

  const health = document.getElementById("health");
  const h = state.health || {};
  const problems = document.getElementById("problems");
  if (state.error) {
    health.dataset.health = "unknown";
    setText(health, "health unknown");
  } else {
    health.dataset.health = h.healthy ? "healthy" : "problems";
    setText(health, h.healthy ? "healthy" : (h.problems || []).length + " problem(s)");
  }
  problems.replaceChildren(...(state.error ? [] : h.problems || []).map((p) => {
    const li = document.createElement("li");
    li.textContent = p;
    return li;
  }));
  problems.hidden = problems.children.length === 0;

  const banner = document.getElementById("banner");
  banner.hidden = !state.error;
  setText(banner, state.error ? "supervisor unreachable: " + state.error + " (showing the last data)" : "");
  const at = state.at ? new Date(state.at * 1000).toLocaleTimeString() : "never";
  setText(document.getElementById("updated"),
    `last data ${at} · every ${state.interval}s · ${state.endpoint} · ${state.subscribers} viewer(s)`);
}

function removeMissing(container, names) {
  for (const card of [...container.children]) {
    if (!names.has(card.dataset.watcher)) {
      for (const el of card.querySelectorAll(".chart")) destroyChart(el);
      card.remove();
    }
  }
}

function cardFor(container, name) {
  let card = [...container.children].find((c) => c.dataset.watcher === name);
  if (card) return card;
  card = document.getElementById("watcher-card").content.firstElementChild.cloneNode(true);
  card.dataset.watcher = name;
  setText(field(card, "name"), name);
  const box = card.querySelector(".charts");
  for (const spec of WATCHER_CHARTS) {
    const fig = document.createElement("figure");
    fig.className = "chart";
    fig.dataset.chart = spec.id;
    fig.dataset.points = "0";
    if (spec.counters) fig.dataset.counters = "";
    if (spec.mongrel2) fig.dataset.mongrel2Only = "";
    const cap = document.createElement("figcaption");
    cap.textContent = spec.title;
    const empty = document.createElement("span");
    empty.className = "empty";
    empty.textContent = spec.empty || "no data yet";
    cap.append(empty);
    const plot = document.createElement("div");
    plot.className = "plot";
    fig.append(cap, plot);
    box.append(fig);
  }
  for (const button of card.querySelectorAll("button[data-command]")) {
    button.addEventListener("click", () => sendCommand(card, name, button));
  }
  container.append(card);
  return card;
}

function renderWatcher(watcher, status, server) {
  const card = cardFor(document.getElementById("watchers"), watcher.name);
  const processes = watcher.processes || [];
  const hasCounters = watcher.totals != null || processes.some((p) => p.served != null);
  card.dataset.counters = hasCounters ? "yes" : "no";

  const state = field(card, "state");
  state.dataset.state = status.state || "unknown";
  setText(state, status.state || "?");
  const running = status.running != null ? status.running : processes.length;
  setText(field(card, "processes"),
    `${running}/${status.numprocesses != null ? status.numprocesses : "?"} running · ${status.ready != null ? status.ready : "?"} ready` +
    (status.stopping ? ` · ${status.stopping} stopping` : ""));
  setText(field(card, "reason"), status.reason || (status.retry_in ? `retry in ${status.retry_in}s` : ""));

  const point = points.length ? (points[points.length - 1].watchers || {})[watcher.name] || {} : {};
  const kpi = (name, text) => setText(card.querySelector(`[data-kpi="${name}"]`), text);
  kpi("rps", num(point.rps));
  kpi("in_flight", num(point.in_flight, 0));
  kpi("p99", latency(point.app_time && point.app_time.p99));
  kpi("errors", [point.errors, point.rejected, point.timed_out].map((v) => num(v)).join(" · "));
  kpi("cpu", point.cpu == null ? "–" : num(point.cpu) + " %");
  kpi("rss", bytes(processes.reduce((sum, p) => sum + (p.rss || 0), 0) || null));

  setText(field(card, "restarts"), restartsText(watcher.restarts));
  renderProcesses(card.querySelector(".procs tbody"), processes);
  renderMongrel2(card, server);
  for (const spec of WATCHER_CHARTS) {
    const el = card.querySelector(`.chart[data-chart="${spec.id}"]`);
    const from = spec.mongrel2 ? "mongrel2" : "watchers";
    updateChart(el, spec, (p) => (p[from] || {})[watcher.name]);
  }
}

/* "restarts: 1 crash, 2 reload" from the supervisor's counts by cause (empty when none). */
function restartsText(restarts) {
  const causes = Object.entries(restarts || {}).filter(([, n]) => n > 0);
  return causes.length ? "restarts: " + causes.map(([cause, n]) => `${n} ${cause.replace("_", " ")}`).join(", ") : "";
}

function renderProcesses(tbody, processes) {
  const rows = processes.map((p) => {
    const tr = document.createElement("tr");
    tr.dataset.pid = p.pid;
    tr.dataset.wid = p.wid;
    tr.dataset.state = p.state;
    const cells = [
      [p.pid], [p.wid], [p.state, "state"], [num(p.cpu), "num"], [bytes(p.rss), "num"],
      [p.fds == null ? "–" : p.fds, "num"], [age(p.age), "num"],
      [p.served == null ? "–" : p.served, "num"], [p.in_flight == null ? "–" : p.in_flight, "num"],
    ];
    for (const [value, cls] of cells) {
      const td = document.createElement("td");
      td.textContent = value;
      if (cls) td.className = cls;
      tr.append(td);
    }
    return tr;
  });
  tbody.replaceChildren(...rows);
}

/* A Mongrel2 watcher's server: whether its control port answers, connections and tasks. */
function renderMongrel2(card, server) {
  if (!server) {
    delete card.dataset.mongrel2;
    return;
  }
  card.dataset.mongrel2 = server.watcher;
  const answering = field(card, "answering");
  answering.dataset.state = server.answering ? "active" : "failed";
  setText(answering, server.answering ? "control port answers" : "control port silent");
  setText(field(card, "endpoint"), server.endpoint || "");
  setText(field(card, "error"), server.error || "");
  setText(card.querySelector('[data-kpi="connections"]'), num(server.connections, 0));
  setText(card.querySelector('[data-kpi="tasks"]'), num(server.tasks, 0));
}

/* ---------- charts ---------- */

/* The chart's series for the current points: fixed ones, or one per process slot seen. */
function seriesOf(spec, pick) {
  if (!spec.perWid) return spec.series;
  const wids = new Set();
  for (const p of points) {
    const w = pick(p);
    if (w && w[spec.perWid]) for (const wid of Object.keys(w[spec.perWid])) wids.add(wid);
  }
  return [...wids].sort((a, b) => Number(a) - Number(b)).map((wid) => ({
    label: "wid " + wid,
    get: (w) => (w[spec.perWid] || {})[wid],
  }));
}

function updateChart(el, spec, pick) {
  const series = seriesOf(spec, pick);
  const data = [points.map((p) => p.t)];
  for (const s of series) {
    data.push(points.map((p) => {
      const w = pick(p);
      const v = w ? s.get(w) : null;
      return v == null ? null : v;
    }));
  }
  const key = series.map((s) => s.label).join("|");
  let chart = charts.get(el);
  if (chart && chart.key !== key) { destroyChart(el); chart = null; }
  if (!chart && typeof uPlot !== "undefined") {
    const plot = makePlot(el, spec, series, data);
    const resize = new ResizeObserver(([entry]) => {
      const width = Math.floor(entry.contentRect.width);
      if (width > 0 && width !== plot.width) plot.setSize({ width, height: CHART_HEIGHT });
    });
    resize.observe(el.querySelector(".plot"));
    chart = { plot, key, resize };
    charts.set(el, chart);
  } else if (chart) {
    chart.plot.setData(data);
  }
  const first = data[1] || [];
  const values = first.filter((v) => v != null);
  const any = data.slice(1).some((col) => col.some((v) => v != null));
  el.dataset.points = String(data[0].length);
  el.dataset.last = first.length && first[first.length - 1] != null ? String(first[first.length - 1]) : "";
  el.dataset.max = values.length ? String(Math.max(...values)) : "";
  el.dataset.empty = any ? "false" : "true";
}

function makePlot(el, spec, series, data) {
  const box = el.querySelector(".plot");
  const axis = { stroke: "#8b949e", grid: { stroke: "#21262d", width: 1 }, ticks: { stroke: "#30363d", width: 1 } };
  const yAxis = { ...axis, size: spec.bytes ? 76 : 50 };
  if (spec.bytes) yAxis.values = (u, ticks) => ticks.map((v) => bytes(v));
  const opts = {
    width: Math.max(box.clientWidth, 200),
    height: CHART_HEIGHT,
    legend: { show: true, live: false },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max || 0, spec.bytes ? 1024 * 1024 : 1) * 1.1] } },
    axes: [axis, yAxis],
    series: [{}, ...series.map((s, i) => ({
      label: s.label,
      stroke: COLORS[i % COLORS.length],
      width: 1.5,
      fill: i === 0 && series.length === 1 ? COLORS[0] + "22" : undefined,
      spanGaps: false,
      points: { show: false },
      value: spec.bytes ? (u, v) => bytes(v) : (u, v) => (v == null ? "–" : num(v, 2)),
    }))],
  };
  return new uPlot(opts, data, box);
}

function destroyChart(el) {
  const chart = charts.get(el);
  if (chart) { chart.resize.disconnect(); chart.plot.destroy(); charts.delete(el); }
}

/* ---------- commands ---------- */

async function sendCommand(card, name, button) {
  const command = button.dataset.command;
  const result = field(card, "result");
  for (const b of card.querySelectorAll("button[data-command]")) b.disabled = true;
  result.className = "result pending";
  result.textContent = `${command} ${name}…`;
  try {
    const response = await fetch("/api/command", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-M2bridge-CSRF": csrf },
      body: JSON.stringify({ command, name }),
    });
    let body;
    try { body = await response.json(); } catch (_) { body = { ok: false, error: `HTTP ${response.status}` }; }
    result.className = "result " + (body.ok ? "ok" : "err");
    result.textContent = body.ok ? describe(command, name, body.data) : `${command} ${name}: ${body.error}`;
  } catch (err) {
    result.className = "result err";
    result.textContent = `${command} ${name}: ${err.message || err}`;
  } finally {
    for (const b of card.querySelectorAll("button[data-command]")) b.disabled = false;
    result.dataset.command = command;
  }
}

function describe(command, name, data) {
  if (data && data.numprocesses != null) return `${command} ${name}: now ${data.numprocesses} process(es)`;
  if (data && data.watchers) return `${command}: ${data.watchers.join(", ") || "nothing"}`;
  return `${command} ${name}: ok`;
}

/* ---------- start ---------- */

connect();
