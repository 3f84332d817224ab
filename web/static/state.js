// The dashboard's view state lives in the URL: every selection (range,
// interval, currency, mode, the bar whose accounts are listed, the cohort
// basis) is a query parameter, so a link reopens the same view.

const KEYS = ["from", "to", "interval", "currency", "livemode", "movers", "basis"];

export function readState(search) {
  const q = new URLSearchParams(search);
  const s = {};
  for (const k of KEYS) s[k] = q.get(k) || "";
  if (!["day", "week", "month"].includes(s.interval)) s.interval = "month";
  if (s.livemode !== "false") s.livemode = "true";
  if (s.basis !== "customers") s.basis = "mrr";
  const m = /^(\d{4}-\d{2}-\d{2}):(new|expansion|contraction|churn|reactivation)$/.exec(s.movers);
  s.movers = m ? { period: m[1], kind: m[2] } : null;
  return s;
}

// query is the state as a query string, in a fixed order; empty and
// default values are left out so links stay short.
export function query(s) {
  const q = new URLSearchParams();
  if (s.from) q.set("from", s.from);
  if (s.to) q.set("to", s.to);
  q.set("interval", s.interval);
  if (s.currency) q.set("currency", s.currency);
  q.set("livemode", s.livemode);
  if (s.movers) q.set("movers", s.movers.period + ":" + s.movers.kind);
  if (s.basis !== "mrr") q.set("basis", s.basis);
  return q.toString();
}

export function writeState(s) {
  const url = location.pathname + "?" + query(s);
  if (url !== location.pathname + location.search) history.replaceState(null, "", url);
}

// apiParams is what the revenue endpoints take from the state: "all" is
// every currency (no currency parameter).
export function apiParams(s) {
  const p = new URLSearchParams();
  p.set("from", s.from);
  p.set("to", s.to);
  p.set("interval", s.interval);
  p.set("livemode", s.livemode);
  if (s.currency && s.currency !== "all") p.set("currency", s.currency);
  return p;
}
