// streamflow web view: polls /api/run once a second and draws the dataflow graph, tables and
// timeline with plain SVG (no libraries, no build step).
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const TIER_COLORS = { edge: "#2a9d8f", hub: "#e9c46a", cloud: "#5e81ac", device: "#8ab17d", camera: "#8ab17d" };
const PALETTE = ["#3b6fb6", "#e76f51", "#2a9d8f", "#9c6ade", "#f4a261", "#264653", "#d1495b", "#8ab17d", "#b5838d", "#6d597a"];
const NODE_W = 180, COL_W = 212, LINE = 15, PAD_X = 150, LANE_GAP = 12;

function el(tag, attrs, parent, text) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}
function h(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}
const tierColor = (t) => TIER_COLORS[t] || "#b48ead";
function num(v, digits) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  const d = digits === undefined ? (Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2) : digits;
  return Number(v).toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
}
function bytes(v) {
  if (v === null || v === undefined) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${num(v, i ? 1 : 0)} ${units[i]}`;
}
const ms = (p) => (p && p.p50 !== null && p.p50 !== undefined) ? `p50 ${num(p.p50)} · p99 ${num(p.p99)} ms` : "p50 – · p99 – ms";

// graph -------------------------------------------------------------------------------------
function layout(df) {
  const depth = {}, preds = {};
  for (const n of df.nodes) { depth[n.name] = 0; preds[n.name] = []; }
  for (const e of df.edges) if (preds[e.dst]) preds[e.dst].push(e.src);
  const visit = (name, seen) => {
    if (seen.has(name)) return depth[name];
    seen.add(name);
    depth[name] = Math.max(0, ...preds[name].filter((p) => p in depth).map((p) => visit(p, seen) + 1));
    return depth[name];
  };
  for (const n of df.nodes) visit(n.name, new Set());
  const tierOf = (n) => {
    const share = {};
    for (const p of n.placement) share[p.tier] = (share[p.tier] || 0) + p.share;
    const best = Object.entries(share).sort((a, b) => b[1] - a[1])[0];
    return best ? best[0] : (df.tiers[0] || "?");
  };
  const tiers = df.tiers.length ? [...df.tiers] : ["?"];
  const cells = {};
  for (const n of df.nodes) {
    const t = tierOf(n);
    if (!tiers.includes(t)) tiers.push(t);
    const key = `${t}|${depth[n.name]}`;
    (cells[key] = cells[key] || []).push(n);
  }
  return { depth, tierOf, tiers, cells, columns: Math.max(0, ...Object.values(depth)) + 1 };
}

function chipRows(node) {
  const rows = [[]];
  let x = 0;
  for (const p of node.placement) {
    const label = node.placement.length > 1 ? `${p.worker} ${Math.round(p.share * 100 / node.placement.reduce((s, q) => s + q.share, 0))}%` : p.worker;
    const w = label.length * 6.2 + 12;
    if (x + w > NODE_W - 12 && rows[rows.length - 1].length) { rows.push([]); x = 0; }
    rows[rows.length - 1].push({ label, tier: p.tier, x, w });
    x += w + 4;
  }
  return rows;
}

function nodeHeight(node) { return 16 + LINE + 6 + chipRows(node).length * 17 + 12 + 2 * LINE + 9; }

function drawGraph(state) {
  const df = state.dataflow, ops = state.operators || {};
  const L = layout(df);
  const laneHeights = L.tiers.map((t) => {
    let hmax = 60;
    for (let c = 0; c < L.columns; c++) {
      const cell = L.cells[`${t}|${c}`] || [];
      hmax = Math.max(hmax, cell.reduce((s, n) => s + nodeHeight(n) + 10, 10));
    }
    return hmax;
  });
  const width = PAD_X + L.columns * COL_W + 10;
  const height = laneHeights.reduce((a, b) => a + b + LANE_GAP, 0);
  const svg = el("svg", { width, height, viewBox: `0 0 ${width} ${height}`, id: "graph-svg", style: "max-width: 100%; height: auto" });
  const defs = el("defs", {}, svg);
  const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" }, defs);
  el("path", { d: "M0,0 L10,5 L0,10 z", fill: "#9aa3b5" }, marker);
  const pos = {};
  let y = 0;
  L.tiers.forEach((t, i) => {
    el("rect", { x: 0, y, width, height: laneHeights[i], fill: tierColor(t), "fill-opacity": 0.08, rx: 6 }, svg);
    el("rect", { x: 0, y, width: 5, height: laneHeights[i], fill: tierColor(t), rx: 2 }, svg);
    el("text", { x: 14, y: y + 20, class: "lane-label" }, svg, t);
    const workers = Object.entries(df.workers).filter(([, w]) => w.tier === t);
    workers.forEach(([name, w], k) => {
      const ws = (state.workers || {})[name] || {};
      const cpu = ws.cpu_percent !== null && ws.cpu_percent !== undefined ? ` · CPU ${num(ws.cpu_percent, 0)}%` : "";
      el("text", { x: 14, y: y + 38 + k * 14, class: "sub", "font-size": 10.5, fill: "#6b7385" }, svg, `${name}${cpu}`);
    });
    for (let c = 0; c < L.columns; c++) {
      let yy = y + 10;
      for (const n of L.cells[`${t}|${c}`] || []) {
        pos[n.name] = { x: PAD_X + c * COL_W, y: yy, h: nodeHeight(n) };
        yy += nodeHeight(n) + 10;
      }
    }
    y += laneHeights[i] + LANE_GAP;
  });
  for (const e of df.edges) {
    const a = pos[e.src], b = pos[e.dst];
    if (!a || !b) continue;
    const x1 = a.x + NODE_W, y1 = a.y + a.h / 2, x2 = b.x - 2, y2 = b.y + b.h / 2;
    const mx = (x1 + x2) / 2;
    el("path", { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, class: "edge", "marker-end": "url(#arrow)" }, svg);
  }
  for (const n of df.nodes) {
    const p = pos[n.name], op = ops[n.name] || {};
    const g = el("g", { class: "node" + ((op.queue || 0) > 0 ? " backlog" : ""), "data-op": n.name, transform: `translate(${p.x},${p.y})` }, svg);
    el("rect", { class: "box", width: NODE_W, height: p.h }, g);
    el("text", { x: 8, y: 16, class: "title" }, g, n.name);
    el("text", { x: 8, y: 16 + LINE, class: "sub" }, g, n.kind + (n.variant ? ` · ${n.variant}` : ""));
    let cy = 16 + LINE + 6;
    for (const row of chipRows(n)) {
      for (const c of row) {
        el("rect", { x: 8 + c.x, y: cy, width: c.w, height: 14, rx: 7, fill: tierColor(c.tier), "fill-opacity": 0.25, stroke: tierColor(c.tier) }, g);
        el("text", { x: 8 + c.x + 6, y: cy + 10.5, class: "chip" }, g, c.label);
      }
      cy += 17;
    }
    const unit = n.role === "source" ? "out/s" : "rec/s";
    el("text", { x: 8, y: cy + 12, class: "rate", "data-op": n.name, "data-rate": op.rate_per_s ?? 0 }, g, `${num(op.rate_per_s ?? 0)} ${unit}`);
    el("text", { x: NODE_W - 8, y: cy + 12, class: "queue", "text-anchor": "end" }, g, `queue ${op.queue ?? 0}`);
    if (n.role === "source") el("text", { x: 8, y: cy + 12 + LINE, class: "sub" }, g, "source");
    else el("text", { x: 8, y: cy + 12 + LINE, class: "lat" }, g, ms(op.service_ms));
    if (op.latency_ms) el("text", { x: 8, y: cy + 12 + 2 * LINE, class: "lat" }, g, `e2e ${ms(op.latency_ms)}`);
    else el("text", { x: 8, y: cy + 12 + 2 * LINE, class: "sub" }, g, `${num(op.records ?? 0, 0)} records`);
  }
  const box = document.getElementById("graph");
  box.replaceChildren(svg);
}

// tables ------------------------------------------------------------------------------------
function table(id, header, rows) {
  const t = document.getElementById(id);
  const head = h("tr");
  header.forEach((c, i) => head.appendChild(h("th", i ? {} : { class: "l" }, c)));
  const body = [head];
  for (const r of rows) {
    const tr = h("tr");
    for (const c of r) {
      if (c instanceof Node) { const td = h("td"); td.appendChild(c); tr.appendChild(td); }
      else tr.appendChild(h("td", {}, c));
    }
    body.push(tr);
  }
  t.replaceChildren(...body);
}

function drawTables(state) {
  const df = state.dataflow, ops = state.operators || {};
  table("operators", ["operator", "variant", "workers", "records", "records/s", "service p50 / p99 ms", "e2e p50 / p99 ms", "queue"],
    df.nodes.map((n) => {
      const op = ops[n.name] || {};
      const pair = (p) => p && p.p50 !== null && p.p50 !== undefined ? `${num(p.p50)} / ${num(p.p99)}` : "–";
      return [n.name, n.variant || n.kind, n.placement.map((p) => p.worker).join(", "), num(op.records ?? 0, 0),
        num(op.rate_per_s ?? 0), pair(op.service_ms), pair(op.latency_ms), String(op.queue ?? 0)];
    }));
  const metrics = (state.metrics || {}).workers || {};
  table("workers", ["worker", "tier", "state", "cost/h", "CPU", "memory", "metrics"],
    Object.entries(df.workers).map(([name, w]) => {
      const ws = (state.workers || {})[name] || {};
      const url = ws.metrics_url || metrics[name];
      const link = url ? h("a", { href: url }, "/metrics") : "–";
      return [name, w.tier, ws.state || "–", num(w.cost_per_hour, 3), ws.cpu_percent == null ? "–" : `${num(ws.cpu_percent, 0)}%`,
        ws.rss_bytes == null ? "–" : bytes(ws.rss_bytes), link];
    }));
  table("links", ["link", "bytes", "bytes/s"],
    Object.entries(state.links || {}).sort().map(([k, v]) => [k, bytes(v.bytes), `${bytes(v.bytes_per_s)}/s`]));
  const acc = state.accuracy || {}, box = document.getElementById("accuracy");
  const lines = [];
  lines.push(h("div", {}, `planner predicted: ${acc.predicted ?? "–"}`));
  const measured = Object.entries(acc.measured || {});
  if (!measured.length) lines.push(h("div", { class: "muted" }, state.live ? "measured against ground truth when the run ends" : "not measured (no sink asked for it)"));
  for (const [sink, block] of measured) {
    if (block.error) { lines.push(h("div", {}, `${sink}: ${block.error}`)); continue; }
    const shown = Object.entries(block).filter(([k, v]) => typeof v === "number").map(([k, v]) => `${k} ${num(v, 3)}`).join(", ");
    lines.push(h("div", {}, `${sink}${block.task ? ` (${block.task})` : ""}: ${shown}`));
  }
  box.replaceChildren(...lines);
}

// timeline ----------------------------------------------------------------------------------
function chart(title, series, events, unit) {
  const W = 460, H = 180, L = 48, R = 10, T = 22, B = 36;
  const svg = el("svg", { width: W, height: H, class: "chart" });
  el("text", { x: L, y: 14, class: "title" }, svg, `${title}${unit ? ` (${unit})` : ""}`);
  const pts = series.flatMap((s) => s.points.filter((p) => p[1] !== null && p[1] !== undefined));
  if (!pts.length) { el("text", { x: L, y: H / 2 }, svg, "no samples yet"); return svg; }
  const tmax = Math.max(...pts.map((p) => p[0]), 1), vmax = (Math.max(...pts.map((p) => p[1])) || 1) * 1.1;
  const X = (t) => L + (W - L - R) * t / tmax, Y = (v) => T + (H - T - B) * (1 - v / vmax);
  el("line", { x1: L, y1: Y(0), x2: W - R, y2: Y(0), class: "axis" }, svg);
  el("line", { x1: L, y1: T, x2: L, y2: Y(0), class: "axis" }, svg);
  for (const f of [0.5, 1]) el("text", { x: L - 4, y: Y(vmax / 1.1 * f) + 3, "text-anchor": "end" }, svg, num(vmax / 1.1 * f));
  el("text", { x: W - R, y: Y(0) + 12, "text-anchor": "end" }, svg, `${num(tmax, 0)} s`);
  events.forEach((e, i) => {
    el("line", { x1: X(e.t_s), y1: T, x2: X(e.t_s), y2: Y(0), class: "event" }, svg);
    el("text", { x: X(e.t_s) + 2, y: T + 8 }, svg, String(i + 1)).appendChild(el("title", {}, null, e.label));
  });
  series.forEach((s, i) => {
    const p = s.points.filter((q) => q[1] !== null && q[1] !== undefined);
    if (!p.length) return;
    const color = PALETTE[i % PALETTE.length];
    el("polyline", { points: p.map((q) => `${X(q[0]).toFixed(1)},${Y(q[1]).toFixed(1)}`).join(" "), fill: "none", stroke: color, "stroke-width": 1.6 }, svg);
    if (p.length < 30) for (const q of p) el("circle", { cx: X(q[0]).toFixed(1), cy: Y(q[1]).toFixed(1), r: 2.2, fill: color }, svg);
    const lx = L + (i % 4) * 104, ly = H - 20 + Math.floor(i / 4) * 11;
    if (ly < H) {
      el("rect", { x: lx, y: ly - 7, width: 8, height: 8, fill: color }, svg);
      el("text", { x: lx + 11, y: ly, class: "legend" }, svg, s.name.length > 15 ? s.name.slice(0, 14) + "…" : s.name);
    }
  });
  return svg;
}

function drawTimeline(state) {
  const w = state.timeline || [], ev = state.events || [];
  const names = (key) => [...new Set(w.flatMap((x) => Object.keys(x[key] || {})))].sort();
  const series = (key, pick) => names(key).map((n) => ({ name: n, points: w.map((x) => [x.t_s, pick((x[key] || {})[n])]) }));
  const charts = [
    chart("records/s", series("rate_per_s", (v) => v ?? 0), ev),
    chart("p99 latency to sinks", series("latency_ms", (v) => v ? v.p99 : null), ev, "ms"),
    chart("queued batches", series("queue", (v) => v ?? 0), ev),
    chart("cost per hour", [{ name: "workers", points: w.map((x) => [x.t_s, x.cost_per_hour ?? 0]) }], ev),
  ];
  const box = document.getElementById("timeline");
  box.replaceChildren(...charts);
  const footer = document.getElementById("footer");
  footer.replaceChildren(...ev.map((e, i) => h("div", {}, `${i + 1}: ${num(e.t_s, 0)} s ${e.label}`)));
}

// header ------------------------------------------------------------------------------------
function drawHeader(state) {
  document.title = `streamflow: ${state.name}`;
  document.getElementById("name").textContent = state.name;
  const badge = document.getElementById("status");
  badge.textContent = state.status;
  badge.className = `badge ${state.status}`;
  const cost = state.cost || {}, ep = state.epochs || {}, m = state.metrics || {};
  const parts = [
    ["elapsed", `${num(state.elapsed_s, 1)} s`],
    ["epochs done", ep.complete ? "all" : (ep.last_complete ?? "–")],
    ["cost", `${num(cost.workers_per_hour, 3)}/h workers` + (cost.expected_per_hour != null ? `, planner ${num(cost.expected_per_hour, 3)}/h with network` : "")],
  ];
  if (state.generation) parts.push(["generation", state.generation]);
  const box = document.getElementById("summary");
  box.replaceChildren();
  for (const [k, v] of parts) {
    box.appendChild(document.createTextNode(`${k} `));
    box.appendChild(h("b", {}, String(v)));
    box.appendChild(document.createTextNode("   "));
  }
  if (m.coordinator) { box.appendChild(h("a", { href: m.coordinator }, "/metrics")); }
  if (state.error) box.appendChild(h("div", {}, `error: ${state.error}`));
}

async function refresh() {
  try {
    const res = await fetch("/api/run", { cache: "no-store" });
    const state = await res.json();
    drawHeader(state);
    drawGraph(state);
    drawTables(state);
    drawTimeline(state);
    document.body.dataset.updated = String(Date.now());
    if (state.live) setTimeout(refresh, 1000);
  } catch (err) {
    document.getElementById("status").textContent = "disconnected";
    document.getElementById("status").className = "badge failed";
  }
}
refresh();
