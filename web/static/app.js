// billingd finance dashboard: fetches /v1/metrics/* (the session cookie
// authenticates) and draws SVG charts. No framework, no external request.
import { money, pct, ratio, moneyTick, pctTick, longPeriod } from "./format.js";
import { el, frame, xAxis, partialBand, hoverColumns, line, legend, MAX_POINTS } from "./charts.js";
import { readState, writeState, apiParams } from "./state.js";
import { drawPlans, drawCohorts, drawMovers, drawAllCurrencies, setOptional } from "./views.js";

export const KINDS = [
  ["new", "New", 1], ["expansion", "Expansion", 1], ["reactivation", "Reactivation", 1],
  ["contraction", "Contraction", -1], ["churn", "Churn", -1],
];
export const $ = (id) => document.getElementById(id);

let state = readState(location.search);
let last = null; // the figures drawn, redrawn on resize
let loadSeq = 0; // only the latest load draws

// HTTPError carries the API's error code; optional views hide on 404.
export class HTTPError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

export async function getJSON(url) {
  const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (r.status === 401) { location.href = "/dashboard"; throw new HTTPError(401, "signed out"); }
  let body = null;
  try { body = await r.json(); } catch (e) { /* a proxy's HTML error page */ }
  if (!r.ok) throw new HTTPError(r.status, body && body.error ? body.error.message : `request failed (HTTP ${r.status})`);
  return body;
}

// optional fetches an endpoint that an older server may not have: null
// on 404, so its view hides instead of failing the page.
export async function optional(url) {
  try { return await getJSON(url); } catch (e) {
    if (e.status === 404) return null;
    throw e;
  }
}

const fmtMoney = (cur) => (v) => money(v, cur.exponent, cur.decimals);

// markPartial flags the bucket containing as_of (the API's partial flag;
// computed when an older server sends none) and any bucket after it: none
// of them is over.
function markPartial(rev) {
  const asOf = Date.parse(rev.as_of);
  for (const c of rev.currencies) {
    for (const p of c.periods) {
      const notOver = Date.parse(p.end + "T00:00:00Z") + 86400000 > asOf;
      p.partial = typeof p.partial === "boolean" ? p.partial || Date.parse(p.start + "T00:00:00Z") > asOf : notOver;
    }
  }
}

// quickRatio is the API's figure when it sends one, else metrics.md's
// (new + expansion + reactivation) ÷ (churn + contraction), null on 0.
export function quickRatio(p) {
  if (p.quick_ratio !== undefined) return p.quick_ratio;
  const down = p.churn + p.contraction;
  return down > 0 ? (p.new + p.expansion + p.reactivation) / down : null;
}

function rangeTotals(ps) {
  const t = { new: 0, expansion: 0, reactivation: 0, contraction: 0, churn: 0, churned_customers: 0, net_new: 0 };
  for (const p of ps) for (const k of Object.keys(t)) t[k] += p[k] || 0;
  return t;
}

function card(box, id, label, value, note) {
  const d = document.createElement("div"); d.className = "card"; d.id = "card-" + id;
  const l = document.createElement("span"); l.textContent = label;
  const v = document.createElement("strong"); v.textContent = value;
  d.append(l, v);
  if (note) { const n = document.createElement("small"); n.textContent = note; d.appendChild(n); }
  box.appendChild(d);
}

function drawSummary(sum, code) {
  const box = $("summary"); box.textContent = "";
  const c = sum && sum.currencies.find((x) => x.currency === code);
  if (!c) { box.textContent = "No revenue recorded in " + (code ? code.toUpperCase() : "any currency") + " yet."; return; }
  const m = (v) => money(v, c.exponent, c.decimals) + " " + c.currency.toUpperCase();
  card(box, "mrr", "MRR", m(c.mrr));
  card(box, "arr", "ARR", m(c.arr));
  card(box, "active", "Active subscriptions", String(c.active_subscriptions));
  card(box, "paying", "Paying customers", String(c.paying_customers));
  card(box, "arpa", "ARPA", m(c.arpa));
  card(box, "new30", "New (30 days)", m(c.movements_30d.new));
  card(box, "churn30", "Churn (30 days)", m(c.movements_30d.churn));
  if (c.clamped) {
    // Figures beyond 2^53 - 1 minor units are shown at that limit.
    const w = document.createElement("p"); w.id = "clamped"; w.className = "warning";
    w.textContent = "Some figures are beyond what can be shown exactly and are capped: the ledger holds implausible amounts.";
    box.appendChild(w);
  }
}

// drawReportingSummary: the summary endpoint is per currency, never
// converted, so the reporting view's cards come from the report's last
// bucket (the range's end).
function drawReportingSummary(cur) {
  const box = $("summary"); box.textContent = "";
  const p = cur && cur.periods[cur.periods.length - 1];
  if (!p) return;
  const m = (v) => money(v, cur.exponent, cur.decimals) + " " + cur.currency.toUpperCase();
  const at = p.partial ? "now" : "on " + p.end;
  card(box, "mrr", "MRR, all currencies", m(p.mrr), at);
  card(box, "arr", "ARR, all currencies", m(p.arr), at);
  card(box, "active", "Active subscriptions", String(p.active_subscriptions), at);
  card(box, "paying", "Paying customers", String(p.paying_customers), at);
  card(box, "arpa", "ARPA", m(p.arpa), at);
}

// drawRange shows the selected range's figures the summary lacks:
// churned customers, quick ratio, LTV and net new MRR.
function drawRange(cur, interval) {
  const box = $("range"); box.textContent = "";
  const t = rangeTotals(cur.periods);
  const m = (v) => money(v, cur.exponent, cur.decimals) + " " + cur.currency.toUpperCase();
  card(box, "net-new", "Net new MRR (range)", m(t.net_new));
  if (cur.reporting) card(box, "fx", "FX effect (range)", m(cur.periods.reduce((s, p) => s + (p.fx_effect || 0), 0)), "exchange rates, not customers");
  card(box, "churned", "Churned customers (range)", String(t.churned_customers));
  card(box, "quick-ratio", "Quick ratio (range)", ratio(quickRatio(t)), "(new + expansion + reactivation) ÷ (churn + contraction)");
  const full = cur.periods.filter((p) => !p.partial);
  const lastFull = full[full.length - 1];
  if (interval !== "month") card(box, "ltv", "LTV", "—", "monthly view only");
  else if (!lastFull) card(box, "ltv", "LTV", "—", "no complete month");
  else card(box, "ltv", "LTV", lastFull.ltv === null ? "—" : m(lastFull.ltv),
    (lastFull.ltv === null ? "no churn in " : "") + longPeriod(lastFull, "month"));
}

function drawMRR(cur, interval) {
  const box = $("mrr-chart"); box.textContent = "";
  const ps = cur.periods, f = fmtMoney(cur);
  const unit = 10 ** (cur.exponent - cur.decimals);
  const fr = frame(box, "MRR over time", ps, 0, Math.max(unit, ...ps.map((p) => p.mrr)),
    (v, step) => moneyTick(v, cur.exponent, cur.decimals, step), unit);
  fr.svg.dataset.currency = cur.currency;
  partialBand(fr);
  line(fr, ps.map((p) => p.mrr), "mrr-line");
  if (ps.length <= MAX_POINTS) {
    ps.forEach((p, i) => {
      fr.svg.appendChild(el("circle", { cx: fr.x(i), cy: fr.y(p.mrr), r: fr.narrow ? 3 : 4,
        class: "mrr-point" + (p.partial ? " partial" : ""), "data-period": p.start, "data-mrr": p.mrr }));
    });
  }
  hoverColumns(fr, (p) => `${longPeriod(p, interval)}${p.partial ? " (so far)" : ""}: MRR ${f(p.mrr)} · ARR ${f(p.arr)}`);
  xAxis(fr, interval);
  box.appendChild(fr.svg);
}

function drawMovements(cur, interval, clickable) {
  const box = $("movements-chart"); box.textContent = "";
  const ps = cur.periods, f = fmtMoney(cur);
  const fx = (p) => p.fx_effect || 0; // reporting currency only: rates moved MRR
  const up = ps.map((p) => p.new + p.expansion + p.reactivation + Math.max(0, fx(p)));
  const down = ps.map((p) => p.contraction + p.churn + Math.max(0, -fx(p)));
  const unit = 10 ** (cur.exponent - cur.decimals);
  const fr = frame(box, "MRR movements", ps, -Math.max(0, ...down), Math.max(unit, ...up),
    (v, step) => moneyTick(v, cur.exponent, cur.decimals, step), unit);
  fr.svg.dataset.currency = cur.currency;
  partialBand(fr);
  const bw = Math.max(1, Math.min(40, fr.slot * 0.7));
  ps.forEach((p, i) => {
    let pos = 0, neg = 0;
    for (const [kind, label, sign] of KINDS) {
      const v = p[kind];
      if (!v) continue;
      const a = sign > 0 ? pos : neg, b = sign > 0 ? pos + v : neg - v;
      if (sign > 0) pos = b; else neg = b;
      const sel = state.movers && state.movers.period === p.start && state.movers.kind === kind;
      const r = el("rect", { x: fr.x(i) - bw / 2, y: Math.min(fr.y(a), fr.y(b)), width: bw, height: Math.max(1, Math.abs(fr.y(a) - fr.y(b))),
        class: "bar " + kind + (clickable ? " clickable" : "") + (sel ? " selected" : ""),
        "data-kind": kind, "data-period": p.start, "data-value": v });
      r.appendChild(el("title", {}, `${longPeriod(p, interval)} ${label}: ${f(v)}${clickable ? " — show the accounts" : ""}`));
      if (clickable) {
        r.setAttribute("tabindex", "0"); r.setAttribute("role", "button");
        const open = () => showMovers(p.start, kind);
        r.addEventListener("click", open);
        r.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(); } });
      }
      fr.svg.appendChild(r);
    }
    if (fx(p)) {
      const v = fx(p), a = v > 0 ? pos : neg, b = a + v;
      const r = el("rect", { x: fr.x(i) - bw / 2, y: Math.min(fr.y(a), fr.y(b)), width: bw, height: Math.max(1, Math.abs(fr.y(a) - fr.y(b))),
        class: "bar fx", "data-kind": "fx_effect", "data-period": p.start, "data-value": v });
      r.appendChild(el("title", {}, `${longPeriod(p, interval)} FX effect: ${f(v)}`));
      fr.svg.appendChild(r);
    }
  });
  xAxis(fr, interval);
  box.appendChild(fr.svg);
  const keys = KINDS.map(([k, l]) => [k, l]);
  if (ps.some((p) => p.fx_effect !== undefined)) keys.push(["fx", "FX effect"]);
  legend(box, keys);
}

const RATES = [["customer_churn_rate", "Customer churn"], ["gross_mrr_churn_rate", "Gross MRR churn"], ["net_mrr_churn_rate", "Net MRR churn"]];

function drawChurn(cur, interval) {
  const box = $("churn-chart"); box.textContent = "";
  const ps = cur.periods;
  const vals = ps.flatMap((p) => RATES.map(([k]) => p[k]).filter((v) => v !== null && v !== undefined));
  const fr = frame(box, "Churn rates", ps, Math.min(0, ...vals), Math.max(0.01, ...vals), pctTick, 0.0001);
  partialBand(fr);
  RATES.forEach(([k], si) => line(fr, ps.map((p) => p[k]), "rate s" + si, { "data-series": k }));
  hoverColumns(fr, (p) => `${longPeriod(p, interval)}${p.partial ? " (so far)" : ""}: ` +
    RATES.map(([k, l]) => `${l} ${pct(p[k])}`).join(" · "));
  xAxis(fr, interval);
  box.appendChild(fr.svg);
  legend(box, RATES.map(([, l], si) => ["rate s" + si, l]));
}

const COLS = [["start", "Period", null], ["mrr", "MRR", "m"], ["arr", "ARR", "m"], ["active_subscriptions", "Active subs", "n"],
  ["paying_customers", "Paying customers", "n"], ["arpa", "ARPA", "m"], ["new", "New", "m"], ["expansion", "Expansion", "m"],
  ["reactivation", "Reactivation", "m"], ["contraction", "Contraction", "m"], ["churn", "Churn", "m"], ["net_new", "Net new", "m"], ["fx_effect", "FX effect", "m"],
  ["churned_customers", "Churned customers", "n"], ["customer_churn_rate", "Customer churn", "%"],
  ["gross_mrr_churn_rate", "Gross MRR churn", "%"], ["net_mrr_churn_rate", "Net MRR churn", "%"],
  ["net_revenue_retention", "NRR", "%"], ["gross_revenue_retention", "GRR", "%"], ["quick_ratio", "Quick ratio", "q"],
  ["ltv", "LTV", "m"], ["trial_starts", "Trials started", "n"], ["trial_conversions", "Trials converted", "n"],
  ["trial_conversion_rate", "Trial conversion", "%"], ["usage_revenue", "Usage revenue", "m"], ["usage_mrr", "Usage MRR (3 months)", "m"]];

// quiet: nothing moved in the bucket and its end figures equal the
// previous bucket's, so a run of them says nothing row by row.
function quiet(p, prev) {
  if (KINDS.some(([k]) => p[k]) || p.churned_customers || p.fx_effect) return false;
  return !prev || (p.mrr === prev.mrr && p.active_subscriptions === prev.active_subscriptions && p.paying_customers === prev.paying_customers);
}

// drawTable lists buckets newest first; runs of quiet buckets fold into
// one row so a day view is not hundreds of rows of zeros.
function drawTable(cur, interval) {
  const t = $("periods"); t.textContent = "";
  const ps = cur.periods;
  // Columns an older server does not send are left out, not shown empty.
  const cols = COLS.filter(([k, , kind]) => kind === null || kind === "q" || !ps.length || ps[0][k] !== undefined);
  const head = t.createTHead().insertRow();
  for (const [, label] of cols) { const th = document.createElement("th"); th.textContent = label; head.appendChild(th); }
  const body = t.createTBody();
  const rows = []; // newest first: {p} or {run: [first, last], n}
  for (let i = ps.length - 1; i >= 0; i--) {
    let j = i;
    while (j >= 0 && quiet(ps[j], ps[j - 1]) && !ps[j].partial) j--;
    if (i - j >= 2) { rows.push({ run: [ps[j + 1], ps[i]], n: i - j }); i = j + 1; continue; }
    rows.push({ p: ps[i] });
  }
  for (const r of rows) {
    const tr = body.insertRow();
    if (r.run) {
      tr.className = "quiet"; tr.dataset.from = r.run[0].start; tr.dataset.to = r.run[1].start;
      const td = tr.insertCell(); td.colSpan = cols.length;
      td.textContent = `${longPeriod(r.run[0], interval)} – ${longPeriod(r.run[1], interval)}: ${r.n} ${interval}s without movement · MRR ${money(r.run[1].mrr, cur.exponent, cur.decimals)}`;
      continue;
    }
    const p = r.p;
    tr.dataset.period = p.start;
    if (p.partial) tr.className = "partial";
    for (const [k, , kind] of cols) {
      const td = tr.insertCell(); td.dataset.col = k;
      if (k === "start") td.textContent = p.start + (p.partial ? " (so far)" : "");
      else if (kind === "m") td.textContent = money(p[k], cur.exponent, cur.decimals);
      else if (kind === "%") td.textContent = pct(p[k]);
      else if (kind === "q") td.textContent = ratio(quickRatio(p));
      else td.textContent = String(p[k]);
    }
  }
}

// clearViews empties every chart, card and list: after an error nothing
// stale may look like the answer to the new question.
function clearViews() {
  for (const id of ["summary", "range", "mrr-chart", "plans-chart", "movements-chart", "movers-list", "churn-chart", "periods", "cohorts", "all-currencies"]) $(id).textContent = "";
  delete document.body.dataset.ready;
  last = null;
}

function setError(msg) {
  const e = $("error");
  e.textContent = msg || "";
  e.hidden = !msg;
}

function render() {
  if (!last) return;
  const { rev, sum, plans, cohorts, movers, moversOK } = last;
  const all = state.currency === "all";
  document.body.classList.toggle("all-view", all);
  if (all) {
    for (const id of ["summary", "range", "mrr-chart", "plans-chart", "movements-chart", "movers-list", "churn-chart", "periods", "cohorts"]) $(id).textContent = "";
    drawAllCurrencies($("all-currencies"), rev, sum);
    $("status").textContent = `All currencies · ${rev.from} to ${rev.to} by ${rev.interval} · as of ${rev.as_of}`;
    return;
  }
  $("all-currencies").textContent = "";
  const reporting = state.currency === "reporting";
  const cur = reporting ? rev.currencies.find((c) => c.reporting) || rev.currencies[0]
    : rev.currencies.find((c) => c.currency === (state.currency || (rev.currencies[0] && rev.currencies[0].currency)));
  if (reporting) drawReportingSummary(cur);
  else drawSummary(sum, state.currency || (cur && cur.currency));
  if (!cur) {
    for (const id of ["range", "mrr-chart", "plans-chart", "movements-chart", "movers-list", "churn-chart", "periods", "cohorts"]) $(id).textContent = "";
    $("status").textContent = "No revenue in this range.";
    return;
  }
  drawRange(cur, rev.interval);
  drawMRR(cur, rev.interval);
  drawPlans($("plans-chart"), plans, cur.currency, rev.interval);
  drawMovements(cur, rev.interval, moversOK);
  drawMovers($("movers-list"), movers, cur, rev.interval, state, closeMovers, (c) => fetchMovers(state.movers, c),
    state.movers ? "/v1/metrics/movements?" + moversQuery(state.movers, null, true).toString() : "");
  drawChurn(cur, rev.interval);
  drawCohorts($("cohorts"), cohorts, state.basis, setBasis);
  drawTable(cur, rev.interval);
  const partial = cur.periods.some((p) => p.partial) ? " · the shaded bucket is not over yet" : "";
  const conv = reporting ? " (every currency converted at each day's reference rate)" : "";
  $("status").textContent = `${cur.currency.toUpperCase()}${conv} · ${rev.from} to ${rev.to} by ${rev.interval} · as of ${rev.as_of}${partial}`;
}

async function load() {
  const seq = ++loadSeq;
  delete document.body.dataset.ready; // set again once this load is drawn
  writeState(state);
  $("status").textContent = "Loading…";
  setError("");
  const p = apiParams(state);
  $("csv").href = "/v1/metrics/revenue?" + p.toString() + "&format=csv";
  try {
    const single = state.currency && state.currency !== "all" && state.currency !== "reporting";
    const planQ = new URLSearchParams(p); planQ.set("group_by", "plan");
    const cohQ = new URLSearchParams({ from: state.from, to: state.to, livemode: state.livemode, basis: state.basis });
    if (single) cohQ.set("currency", state.currency);
    let [rev, sum, plans, cohorts, moversOK] = await Promise.all([
      getJSON("/v1/metrics/revenue?" + p.toString()),
      getJSON("/v1/metrics/summary?livemode=" + state.livemode),
      single ? optional("/v1/metrics/revenue?" + planQ.toString()) : null,
      single ? optional("/v1/metrics/cohorts?" + cohQ.toString()) : null,
      single ? moversAvailable() : false,
    ]);
    // A server without segments ignores group_by: no groups, no view.
    if (plans && plans.group_by !== "plan") plans = null;
    let movers = null;
    if (moversOK && state.movers) movers = await fetchMovers(state.movers, null);
    if (seq !== loadSeq) return;
    markPartial(rev);
    if (plans) markPartial(plans);
    last = { rev, sum, plans, cohorts, movers, moversOK };
    setOptional({ plans: !!plans, cohorts: !!cohorts, movers: moversOK });
    render();
    document.body.dataset.ready = "true";
  } catch (e) {
    if (seq !== loadSeq) return;
    clearViews();
    $("status").textContent = "";
    setError("Could not load figures: " + e.message);
  }
}

// The movers endpoint is probed once per page: its absence (an older
// server) only makes the bars plain.
let moversProbe = null;
function moversAvailable() {
  if (!moversProbe) {
    const q = new URLSearchParams({ from: state.to, to: state.to, type: "churn", livemode: state.livemode, limit: "1" });
    moversProbe = optional("/v1/metrics/movements?" + q.toString()).then((b) => b !== null, () => true);
  }
  return moversProbe;
}

// bucketEnd is the last day of the bucket starting on start (UTC).
function bucketEnd(start, interval) {
  const d = new Date(start + "T00:00:00Z");
  if (interval === "month") return isoDay(new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)));
  if (interval === "week") return isoDay(new Date(d.getTime() + 6 * 86400000));
  return start;
}

// moversQuery asks for the accounts behind one bar: its bucket's days,
// its kind, the currency and mode shown. The CSV link takes the server's
// CSV page size instead of 50.
function moversQuery(sel, cursor, csv) {
  const q = new URLSearchParams({ from: sel.period, to: bucketEnd(sel.period, state.interval), type: sel.kind, livemode: state.livemode });
  if (state.currency) q.set("currency", state.currency);
  if (csv) q.set("format", "csv"); else q.set("limit", "50");
  if (cursor) q.set("cursor", cursor);
  return q;
}

async function fetchMovers(sel, cursor) {
  return getJSON("/v1/metrics/movements?" + moversQuery(sel, cursor).toString());
}

// showMovers lists the accounts behind one bar (a link that survives a
// reload: the selection is in the URL).
async function showMovers(period, kind) {
  state.movers = { period, kind };
  writeState(state);
  try {
    const m = await fetchMovers(state.movers, null);
    if (!last) return;
    last.movers = m;
    render();
    $("movers").scrollIntoView({ block: "nearest" });
  } catch (e) {
    $("movers-list").textContent = "";
    setError("Could not load the accounts: " + e.message);
  }
}

function closeMovers() {
  state.movers = null;
  writeState(state);
  if (last) { last.movers = null; render(); }
}

function setBasis(b) {
  state.basis = b;
  load();
}

// defaultCurrency is the one with the most paying customers (amounts in
// different currencies do not compare), the first by code on a tie.
function defaultCurrency(cs) {
  let best = null;
  for (const c of cs) if (!best || c.paying_customers > best.paying_customers) best = c;
  return best ? best.currency : "";
}

// fillCurrencies lists the selected mode's currencies; it runs again on
// every switch between live and test, which have their own currencies.
// Returns the earliest day with data, for the default range.
async function fillCurrencies() {
  const sel = $("currency");
  const sum = await getJSON("/v1/metrics/summary?livemode=" + state.livemode);
  sel.textContent = "";
  const add = (v, label) => { const o = document.createElement("option"); o.value = v; o.textContent = label; sel.appendChild(o); };
  for (const c of sum.currencies) add(c.currency, c.currency.toUpperCase());
  if (sum.currencies.length > 1) add("all", "All, side by side");
  if (sum.reporting_currency) add("reporting", `Total in ${sum.reporting_currency.toUpperCase()}`);
  const known = [...sel.options].some((o) => o.value === state.currency);
  if (state.currency && !known && sum.currencies.length === 0) add(state.currency, state.currency.toUpperCase());
  else if (!known) state.currency = defaultCurrency(sum.currencies);
  sel.value = state.currency;
  const firsts = sum.currencies.map((c) => c.first_activity).filter(Boolean).sort();
  return { first: firsts[0] || null, today: sum.as_of.slice(0, 10) };
}

function isoDay(d) { return d.toISOString().slice(0, 10); }

// defaultRange runs from the first month with data (at most ten years
// back, the API's limit) to today, the server's (its clock decides which
// bucket is partial); twelve months when there is no data yet.
function defaultRange({ first, today }) {
  if (!state.to) state.to = today || isoDay(new Date());
  if (state.from) return;
  const to = new Date(state.to + "T00:00:00Z");
  const floor = new Date(Date.UTC(to.getUTCFullYear() - 10, to.getUTCMonth(), to.getUTCDate() + 1));
  let from = new Date(Date.UTC(to.getUTCFullYear(), to.getUTCMonth() - 11, 1));
  if (first) {
    const f = new Date(first.slice(0, 10) + "T00:00:00Z");
    from = new Date(Date.UTC(f.getUTCFullYear(), f.getUTCMonth(), 1));
    if (from < floor) from = floor;
    if (from > to) from = to;
  }
  state.from = isoDay(from);
}

function showControls() {
  $("from").value = state.from; $("to").value = state.to;
  $("interval").value = state.interval; $("livemode").value = state.livemode;
  $("currency").value = state.currency;
}

async function init() {
  let known = {};
  try { known = await fillCurrencies(); } catch (e) { /* load() reports it */ }
  defaultRange(known);
  showControls();
  $("apply").addEventListener("click", () => {
    state.from = $("from").value; state.to = $("to").value; state.movers = null;
    load();
  });
  $("interval").addEventListener("change", () => { state.interval = $("interval").value; state.movers = null; load(); });
  $("currency").addEventListener("change", () => { state.currency = $("currency").value; state.movers = null; load(); });
  $("livemode").addEventListener("change", async () => {
    delete document.body.dataset.ready;
    state.livemode = $("livemode").value; state.movers = null;
    moversProbe = null;
    try { await fillCurrencies(); } catch (e) { clearViews(); setError("Could not load currencies: " + e.message); return; }
    load();
  });
  // Charts are drawn at their container's width: redraw when it changes
  // (a rotated phone, a resized window, a scroll bar appearing).
  let width = document.body.clientWidth, t = null;
  new ResizeObserver(() => {
    if (document.body.clientWidth === width) return;
    width = document.body.clientWidth;
    clearTimeout(t); t = setTimeout(render, 100);
  }).observe(document.body);
  load();
}

document.addEventListener("DOMContentLoaded", init);
