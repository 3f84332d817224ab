// The dashboard's views beyond the single-currency charts: MRR by plan,
// the cohort heat map, the accounts behind a movement, and every currency
// side by side. Each hides cleanly when its endpoint is absent (404).
import { money, pct, ratio, moneyTick, longPeriod } from "./format.js";
import { el, frame, xAxis, partialBand, hoverColumns, line, legend } from "./charts.js";

const $ = (id) => document.getElementById(id);

// setOptional shows the sections whose endpoints answered.
export function setOptional(on) {
  $("plans").hidden = !on.plans;
  $("cohorts-section").hidden = !on.cohorts;
  $("movers-hint").hidden = !on.movers;
}

const MAX_PLANS = 7; // more plans than colours tell apart fold into "Other plans"

// planSeries reads the group_by=plan report of one currency (one entry
// per currency and plan, its segment the price ID) as [{key, label,
// periods}], largest MRR at the end of the range first.
export function planSeries(plans, code) {
  if (!plans) return [];
  const groups = plans.currencies.filter((c) => c.currency === code && typeof c.segment === "string")
    .map((c) => ({ key: c.segment, label: c.segment_name || c.segment, periods: c.periods }));
  const endMRR = (g) => g.periods.length ? g.periods[g.periods.length - 1].mrr : 0;
  groups.sort((a, b) => endMRR(b) - endMRR(a) || (a.key < b.key ? -1 : 1));
  if (groups.length <= MAX_PLANS) return groups;
  const keep = groups.slice(0, MAX_PLANS - 1), rest = groups.slice(MAX_PLANS - 1);
  const other = { key: "other", label: `Other plans (${rest.length})`, periods: rest[0].periods.map((p, i) => ({
    start: p.start, end: p.end, partial: p.partial, mrr: rest.reduce((s, g) => s + g.periods[i].mrr, 0) })) };
  return [...keep, other];
}

// drawPlans stacks each plan's MRR per bucket: the stack's height is the
// currency's MRR.
export function drawPlans(box, plans, code, interval) {
  box.textContent = "";
  const series = planSeries(plans, code);
  if (!series.length) { if (plans) box.textContent = "No plan data in this range."; return; }
  const cur = plans.currencies.find((c) => c.currency === code); // exponents
  const ps = series[0].periods;
  const totals = ps.map((_, i) => series.reduce((s, g) => s + Math.max(0, g.periods[i].mrr), 0));
  const unit = 10 ** (cur.exponent - cur.decimals);
  const fr = frame(box, "MRR by plan", ps, 0, Math.max(unit, ...totals),
    (v, step) => moneyTick(v, cur.exponent, cur.decimals, step), unit);
  partialBand(fr);
  const bw = Math.max(1, Math.min(40, fr.slot * 0.7));
  ps.forEach((p, i) => {
    let acc = 0;
    series.forEach((g, si) => {
      const v = g.periods[i].mrr;
      if (v <= 0) return;
      const r = el("rect", { x: fr.x(i) - bw / 2, y: fr.y(acc + v), width: bw, height: Math.max(1, fr.y(acc) - fr.y(acc + v)),
        class: "plan p" + si, "data-plan": g.key, "data-period": p.start, "data-mrr": v });
      r.appendChild(el("title", {}, `${longPeriod(p, interval)} ${g.label}: ${money(v, cur.exponent, cur.decimals)}`));
      fr.svg.appendChild(r);
      acc += v;
    });
  });
  xAxis(fr, interval);
  box.appendChild(fr.svg);
  legend(box, series.map((g, si) => ["plan p" + si, g.label]));
}

// heat buckets a retention into eleven shades (CSS classes: the strict
// CSP forbids inline styles).
function heat(v) {
  if (v === null || v === undefined) return "hnull";
  return "h" + Math.max(0, Math.min(10, Math.round(v * 10)));
}

// drawCohorts is the heat map: a row per first-paid month, a column per
// month since, each cell the cohort's retention that month.
export function drawCohorts(box, coh, basis, setBasis) {
  box.textContent = "";
  if (!coh) return;
  const sw = document.createElement("div"); sw.className = "basis";
  for (const [b, label] of [["mrr", "Net MRR retention"], ["customers", "Customer retention"]]) {
    const btn = document.createElement("button"); btn.type = "button"; btn.id = "basis-" + b; btn.textContent = label;
    btn.setAttribute("aria-pressed", String(b === basis));
    btn.addEventListener("click", () => { if (b !== basis) setBasis(b); });
    sw.appendChild(btn);
  }
  box.appendChild(sw);
  const rows = coh.cohorts || [];
  if (!rows.length) { const p = document.createElement("p"); p.textContent = "No cohorts in this range."; box.appendChild(p); return; }
  const field = basis === "customers" ? "customer_retention" : "net_mrr_retention";
  const width = Math.max(...rows.map((r) => r.months.length));
  const several = new Set(rows.map((r) => r.currency)).size > 1;
  const t = document.createElement("table"); t.className = "heat"; t.id = "cohort-table";
  const h = t.createTHead().insertRow();
  for (const label of ["Cohort", "Customers", ...Array.from({ length: width }, (_, i) => "M" + i)]) {
    const th = document.createElement("th"); th.textContent = label; h.appendChild(th);
  }
  const body = t.createTBody();
  for (const r of rows) {
    const tr = body.insertRow(); tr.dataset.cohort = r.cohort; tr.dataset.currency = r.currency || "";
    tr.insertCell().textContent = r.cohort + (several ? " " + r.currency.toUpperCase() : "");
    tr.insertCell().textContent = String(r.customers);
    const byOffset = new Map(r.months.map((m, i) => [m.offset ?? i, m]));
    for (let i = 0; i < width; i++) {
      const td = tr.insertCell();
      const m = byOffset.get(i);
      if (!m) continue;
      const v = m.retention !== undefined ? m.retention : m[field];
      td.className = heat(v) + (m.partial ? " partial" : "");
      td.dataset.month = String(i);
      td.textContent = v === null || v === undefined ? "—" : Math.round(v * 100) + "%";
      td.title = `${r.cohort}, month ${i}${m.partial ? " (so far)" : ""}: net MRR ${pct(m.net_mrr_retention)} · gross MRR ${pct(m.gross_mrr_retention)} · customers ${pct(m.customer_retention)}`;
    }
  }
  const wrap = document.createElement("div"); wrap.className = "scroll"; wrap.appendChild(t);
  box.appendChild(wrap);
}

const KIND_LABEL = { new: "New", expansion: "Expansion", contraction: "Contraction", churn: "Churn", reactivation: "Reactivation" };

// drawMovers lists the accounts behind the selected bar (GET
// /v1/metrics/movements), with the bar highlighted, a way back, further
// pages and the same list as CSV. Accounts are the app's own IDs; an
// erased, unlinked or deleted customer shows as such, never by an ID.
export function drawMovers(box, movers, cur, interval, state, close, more, csvHref) {
  box.textContent = "";
  $("movers").hidden = !state.movers || !movers;
  if (!state.movers || !movers) return;
  const p = cur.periods.find((x) => x.start === state.movers.period);
  const m = (v) => money(v, cur.exponent, cur.decimals);
  const h = document.createElement("h3"); h.id = "movers-title";
  const total = p ? m(p[state.movers.kind]) + " " + cur.currency.toUpperCase() : "";
  h.textContent = `${KIND_LABEL[state.movers.kind]} in ${p ? longPeriod(p, interval) : state.movers.period}: ${total}`;
  const x = document.createElement("button"); x.type = "button"; x.id = "movers-close"; x.textContent = "Close";
  x.addEventListener("click", close);
  const csv = document.createElement("a"); csv.id = "movers-csv"; csv.href = csvHref; csv.textContent = "CSV"; csv.download = "";
  box.append(h, x, " ", csv);
  const t = document.createElement("table"); t.id = "movers-table";
  const hr = t.createTHead().insertRow();
  for (const label of ["Account", "Date", "Change", "MRR before", "MRR after", "Plans before", "Plans after"]) {
    const th = document.createElement("th"); th.textContent = label; hr.appendChild(th);
  }
  const body = t.createTBody();
  const add = (rows) => {
    for (const r of rows) {
      const tr = body.insertRow();
      tr.dataset.account = r.account_id || "";
      const a = tr.insertCell(); a.className = r.account_id ? "account" : "account anonymous";
      a.textContent = r.account_id || r.account;
      tr.insertCell().textContent = r.date;
      const amount = tr.insertCell(); amount.dataset.col = "amount"; amount.textContent = (r.amount > 0 ? "+" : "") + m(r.amount);
      tr.insertCell().textContent = m(r.mrr_before);
      tr.insertCell().textContent = m(r.mrr_after);
      tr.insertCell().textContent = (r.plans_before || []).join(", ") || "—";
      tr.insertCell().textContent = (r.plans_after || []).join(", ") || "—";
    }
  };
  const rows = movers.movements || [];
  add(rows);
  const wrap = document.createElement("div"); wrap.className = "scroll"; wrap.appendChild(t);
  box.appendChild(wrap);
  if (!rows.length) { const n = document.createElement("p"); n.textContent = "No accounts."; box.appendChild(n); }
  if (movers.next_cursor && more) {
    let cursor = movers.next_cursor;
    const b = document.createElement("button"); b.type = "button"; b.id = "movers-more"; b.textContent = "More accounts";
    b.addEventListener("click", async () => {
      b.disabled = true;
      try {
        const next = await more(cursor);
        add(next.movements || []);
        cursor = next.next_cursor;
        if (!cursor) b.remove(); else b.disabled = false;
      } catch (e) {
        b.textContent = "Could not load more: " + e.message; b.disabled = false;
      }
    });
    box.appendChild(b);
  }
}

// drawAllCurrencies puts every currency side by side: amounts are never
// added across currencies (that is the reporting currency's job).
export function drawAllCurrencies(box, rev, sum) {
  box.textContent = "";
  if (!rev.currencies.length) { box.textContent = "No revenue in this range."; return; }
  const grid = document.createElement("div"); grid.className = "currency-grid";
  box.appendChild(grid);
  // Every panel is laid out before any chart is drawn: a chart drawn
  // while its panel was alone in the grid would be scaled down later.
  const charts = [];
  for (const cur of rev.currencies) {
    const panel = document.createElement("section"); panel.className = "currency-panel"; panel.dataset.currency = cur.currency;
    const h = document.createElement("h3"); h.textContent = cur.currency.toUpperCase(); panel.appendChild(h);
    const now = sum && sum.currencies.find((c) => c.currency === cur.currency);
    const m = (v) => money(v, cur.exponent, cur.decimals);
    const t = { new: 0, expansion: 0, reactivation: 0, contraction: 0, churn: 0, churned_customers: 0, net_new: 0 };
    for (const p of cur.periods) for (const k of Object.keys(t)) t[k] += p[k] || 0;
    const down = t.churn + t.contraction;
    const dl = document.createElement("dl");
    for (const [k, label, v] of [["mrr", "MRR now", now ? m(now.mrr) : "—"], ["arr", "ARR now", now ? m(now.arr) : "—"],
      ["paying", "Paying customers", now ? String(now.paying_customers) : "—"], ["net-new", "Net new MRR (range)", m(t.net_new)],
      ["churned", "Churned customers (range)", String(t.churned_customers)],
      ["quick-ratio", "Quick ratio (range)", ratio(down > 0 ? (t.new + t.expansion + t.reactivation) / down : null)]]) {
      const dt = document.createElement("dt"); dt.textContent = label;
      const dd = document.createElement("dd"); dd.textContent = v; dd.dataset.figure = k;
      dl.append(dt, dd);
    }
    panel.appendChild(dl);
    const chart = document.createElement("div"); chart.className = "mini-chart"; panel.appendChild(chart);
    grid.appendChild(panel);
    charts.push([chart, cur]);
  }
  for (const [chart, cur] of charts) {
    const m = (v) => money(v, cur.exponent, cur.decimals);
    const ps = cur.periods, unit = 10 ** (cur.exponent - cur.decimals);
    const fr = frame(chart, "MRR in " + cur.currency.toUpperCase(), ps, 0, Math.max(unit, ...ps.map((p) => p.mrr)),
      (v, step) => moneyTick(v, cur.exponent, cur.decimals, step), unit);
    fr.svg.dataset.currency = cur.currency;
    partialBand(fr);
    line(fr, ps.map((p) => p.mrr), "mrr-line");
    hoverColumns(fr, (p) => `${longPeriod(p, rev.interval)}: MRR ${m(p.mrr)} ${cur.currency.toUpperCase()}`);
    xAxis(fr, rev.interval);
    chart.appendChild(fr.svg);
  }
}
