// billingd finance dashboard: fetches /v1/metrics/* (the session cookie
// authenticates) and draws SVG charts. No framework, no external request.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const KINDS = [
  ["new", "New", 1], ["expansion", "Expansion", 1], ["reactivation", "Reactivation", 1],
  ["contraction", "Contraction", -1], ["churn", "Churn", -1],
];
const $ = (id) => document.getElementById(id);

// money formats an integer amount in minor units exactly, with string
// arithmetic: exp is the API exponent, dec the decimals shown.
function money(minor, exp, dec) {
  if (minor === null || minor === undefined) return "—";
  const neg = minor < 0;
  let s = String(Math.abs(minor)).padStart(exp + 1, "0");
  let whole = exp > 0 ? s.slice(0, s.length - exp) : s;
  let frac = exp > 0 ? s.slice(s.length - exp) : "";
  if (dec < exp) { // ISK/HUF/TWD: hundredths shown as whole units
    const n = BigInt(whole + frac);
    const step = 10n ** BigInt(exp - dec);
    let q = n / step; const r = n % step;
    if (r * 2n > step || (r * 2n === step && q % 2n === 1n)) q += 1n;
    whole = String(q); frac = "";
  }
  whole = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return (neg ? "−" : "") + whole + (frac ? "." + frac : "");
}

function pct(r) {
  return r === null || r === undefined ? "—" : (Math.round(r * 10000) / 100).toFixed(2) + "%";
}

function el(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function params() {
  const p = new URLSearchParams();
  p.set("from", $("from").value);
  p.set("to", $("to").value);
  p.set("interval", $("interval").value);
  p.set("livemode", $("livemode").value);
  if ($("currency").value) p.set("currency", $("currency").value);
  return p;
}

async function getJSON(url) {
  const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (r.status === 401) { location.href = "/dashboard"; throw new Error("signed out"); }
  const body = await r.json();
  if (!r.ok) throw new Error(body.error ? body.error.message : "request failed");
  return body;
}

const W = 900, H = 260, PAD = { l: 90, r: 20, t: 16, b: 40 };

// axis draws a y-axis with ticks labelled through fmt, and returns y().
function axis(svg, lo, hi, fmt) {
  if (hi === lo) hi = lo + 1;
  const y = (v) => PAD.t + (H - PAD.t - PAD.b) * (1 - (v - lo) / (hi - lo));
  for (let i = 0; i <= 4; i++) {
    const v = lo + ((hi - lo) * i) / 4;
    svg.appendChild(el("line", { x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v), class: "grid" }));
    svg.appendChild(el("text", { x: PAD.l - 6, y: y(v) + 4, "text-anchor": "end", class: "tick" }, fmt(Math.round(v))));
  }
  return y;
}

function xLabels(svg, periods, x) {
  const every = Math.max(1, Math.ceil(periods.length / 12));
  periods.forEach((p, i) => {
    if (i % every === 0) svg.appendChild(el("text", { x: x(i), y: H - PAD.b + 16, "text-anchor": "middle", class: "tick" }, p.start));
  });
}

function drawMRR(cur) {
  const box = $("mrr-chart"); box.textContent = "";
  const ps = cur.periods;
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "MRR over time", "data-currency": cur.currency });
  const hi = Math.max(0, ...ps.map((p) => p.mrr));
  const fmt = (v) => money(v, cur.exponent, cur.decimals);
  const y = axis(svg, 0, hi * 1.1 || 1, fmt);
  const x = (i) => PAD.l + ((W - PAD.l - PAD.r) * (i + 0.5)) / ps.length;
  const pts = ps.map((p, i) => `${x(i)},${y(p.mrr)}`).join(" ");
  svg.appendChild(el("polyline", { points: pts, class: "mrr-line" }));
  ps.forEach((p, i) => {
    const c = el("circle", { cx: x(i), cy: y(p.mrr), r: 4, class: "mrr-point", "data-period": p.start, "data-mrr": p.mrr });
    c.appendChild(el("title", {}, `${p.start}: MRR ${fmt(p.mrr)} · ARR ${fmt(p.arr)}`));
    svg.appendChild(c);
  });
  xLabels(svg, ps, x);
  box.appendChild(svg);
}

function drawMovements(cur) {
  const box = $("movements-chart"); box.textContent = "";
  const ps = cur.periods;
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "MRR movements", "data-currency": cur.currency });
  const up = ps.map((p) => p.new + p.expansion + p.reactivation);
  const down = ps.map((p) => p.contraction + p.churn);
  const hi = Math.max(1, ...up), lo = -Math.max(0, ...down);
  const fmt = (v) => money(v, cur.exponent, cur.decimals);
  const y = axis(svg, lo * 1.1, hi * 1.1, fmt);
  const slot = (W - PAD.l - PAD.r) / ps.length;
  const x = (i) => PAD.l + slot * (i + 0.5);
  const bw = Math.max(2, slot * 0.6);
  ps.forEach((p, i) => {
    let pos = 0, neg = 0;
    for (const [kind, label, sign] of KINDS) {
      const v = p[kind];
      if (!v) continue;
      const a = sign > 0 ? pos : neg, b = sign > 0 ? pos + v : neg - v;
      if (sign > 0) pos = b; else neg = b;
      const r = el("rect", { x: x(i) - bw / 2, y: Math.min(y(a), y(b)), width: bw, height: Math.abs(y(a) - y(b)),
        class: "bar " + kind, "data-kind": kind, "data-period": p.start, "data-value": v });
      r.appendChild(el("title", {}, `${p.start} ${label}: ${fmt(v)}`));
      svg.appendChild(r);
    }
  });
  svg.appendChild(el("line", { x1: PAD.l, x2: W - PAD.r, y1: y(0), y2: y(0), class: "zero" }));
  xLabels(svg, ps, x);
  box.appendChild(svg);
  const legend = $("legend"); legend.textContent = "";
  for (const [kind, label] of KINDS) {
    const s = document.createElement("span"); s.className = "key " + kind; s.textContent = label; legend.appendChild(s);
  }
}

function drawChurn(cur) {
  const box = $("churn-chart"); box.textContent = "";
  const ps = cur.periods;
  const series = [["customer_churn_rate", "Customer churn"], ["gross_mrr_churn_rate", "Gross MRR churn"], ["net_mrr_churn_rate", "Net MRR churn"]];
  const vals = ps.flatMap((p) => series.map(([k]) => p[k]).filter((v) => v !== null));
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Churn rates" });
  const y = axis(svg, Math.min(0, ...vals), Math.max(0.01, ...vals), (v) => v);
  svg.querySelectorAll("text.tick").forEach((t, i) => { t.textContent = pct(Math.min(0, ...vals) + ((Math.max(0.01, ...vals) - Math.min(0, ...vals)) * i) / 4); });
  const x = (i) => PAD.l + ((W - PAD.l - PAD.r) * (i + 0.5)) / ps.length;
  series.forEach(([k, label], si) => {
    const pts = ps.map((p, i) => (p[k] === null ? null : `${x(i)},${y(p[k])}`)).filter(Boolean).join(" ");
    if (pts) svg.appendChild(el("polyline", { points: pts, class: "rate s" + si, "data-series": k }));
    svg.appendChild(el("text", { x: PAD.l + 10 + si * 170, y: PAD.t + 4, class: "rate-label s" + si }, label));
  });
  xLabels(svg, ps, x);
  box.appendChild(svg);
}

function drawTable(cur) {
  const t = $("periods"); t.textContent = "";
  const cols = [["start", "Period", null], ["mrr", "MRR", "m"], ["arr", "ARR", "m"], ["active_subscriptions", "Active subs", "n"],
    ["paying_customers", "Paying customers", "n"], ["arpa", "ARPA", "m"], ["new", "New", "m"], ["expansion", "Expansion", "m"],
    ["reactivation", "Reactivation", "m"], ["contraction", "Contraction", "m"], ["churn", "Churn", "m"], ["net_new", "Net new", "m"],
    ["customer_churn_rate", "Customer churn", "%"], ["gross_mrr_churn_rate", "Gross MRR churn", "%"],
    ["net_mrr_churn_rate", "Net MRR churn", "%"], ["net_revenue_retention", "NRR", "%"]];
  const head = t.createTHead().insertRow();
  for (const [, label] of cols) { const th = document.createElement("th"); th.textContent = label; head.appendChild(th); }
  const body = t.createTBody();
  for (const p of cur.periods) {
    const tr = body.insertRow(); tr.dataset.period = p.start;
    for (const [k, , kind] of cols) {
      const td = tr.insertCell(); td.dataset.col = k;
      td.textContent = kind === "m" ? money(p[k], cur.exponent, cur.decimals) : kind === "%" ? pct(p[k]) : String(p[k]);
    }
  }
}

function drawSummary(sum, code) {
  const box = $("summary"); box.textContent = "";
  const c = sum.currencies.find((x) => x.currency === code);
  if (!c) { box.textContent = "No revenue recorded in " + (code || "any currency") + " yet."; return; }
  const exp = c.exponent, dec = c.decimals;
  const cards = [["MRR", money(c.mrr, exp, dec), "mrr"], ["ARR", money(c.arr, exp, dec), "arr"],
    ["Active subscriptions", String(c.active_subscriptions), "active"], ["Paying customers", String(c.paying_customers), "paying"],
    ["ARPA", money(c.arpa, exp, dec), "arpa"],
    ["New (30 days)", money(c.movements_30d.new, exp, dec), "new30"], ["Churn (30 days)", money(c.movements_30d.churn, exp, dec), "churn30"]];
  for (const [label, value, id] of cards) {
    const d = document.createElement("div"); d.className = "card"; d.id = "card-" + id;
    const l = document.createElement("span"); l.textContent = label;
    const v = document.createElement("strong"); v.textContent = value + (id.match(/active|paying/) ? "" : " " + c.currency.toUpperCase());
    d.append(l, v); box.appendChild(d);
  }
  if (c.clamped) {
    // Figures beyond 2^53 - 1 minor units are shown at that limit.
    const w = document.createElement("p"); w.id = "clamped"; w.className = "warning";
    w.textContent = "Some figures are beyond what can be shown exactly and are capped: the ledger holds implausible amounts.";
    box.appendChild(w);
  }
}

async function load() {
  $("status").textContent = "Loading…";
  const p = params();
  $("csv").href = "/v1/metrics/revenue?" + p.toString() + "&format=csv";
  try {
    const [rev, sum] = await Promise.all([
      getJSON("/v1/metrics/revenue?" + p.toString()),
      getJSON("/v1/metrics/summary?livemode=" + $("livemode").value),
    ]);
    const code = $("currency").value || (rev.currencies[0] && rev.currencies[0].currency);
    drawSummary(sum, code);
    const cur = rev.currencies.find((c) => c.currency === code);
    if (!cur) { $("status").textContent = "No revenue in this range."; return; }
    drawMRR(cur); drawMovements(cur); drawChurn(cur); drawTable(cur);
    $("status").textContent = `${cur.currency.toUpperCase()} · ${rev.from} to ${rev.to} by ${rev.interval} · as of ${rev.as_of}`;
    document.body.dataset.ready = "true";
  } catch (e) {
    $("status").textContent = "Could not load figures: " + e.message;
  }
}

async function init() {
  const today = new Date();
  const to = today.toISOString().slice(0, 10);
  const from = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() - 11, 1)).toISOString().slice(0, 10);
  const q = new URLSearchParams(location.search);
  $("from").value = q.get("from") || from;
  $("to").value = q.get("to") || to;
  $("interval").value = q.get("interval") || "month";
  $("livemode").value = q.get("livemode") || "true";
  try {
    const sum = await getJSON("/v1/metrics/summary?livemode=" + $("livemode").value);
    const sel = $("currency"); sel.textContent = "";
    for (const c of sum.currencies) { const o = document.createElement("option"); o.value = o.textContent = c.currency; sel.appendChild(o); }
    if (q.get("currency")) {
      if (![...sel.options].some((o) => o.value === q.get("currency"))) { const o = document.createElement("option"); o.value = o.textContent = q.get("currency"); sel.appendChild(o); }
      sel.value = q.get("currency");
    }
  } catch (e) { /* load() reports it */ }
  $("apply").addEventListener("click", load);
  for (const id of ["interval", "currency", "livemode"]) $(id).addEventListener("change", load);
  load();
}

document.addEventListener("DOMContentLoaded", init);
