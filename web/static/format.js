// Number and date formatting for the finance dashboard, and the "nice"
// axis ticks: pure functions, no DOM.

// money formats an integer amount in minor units exactly, with string
// arithmetic: exp is the API exponent, dec the decimals shown.
export function money(minor, exp, dec) {
  if (minor === null || minor === undefined) return "—";
  const neg = minor < 0;
  const s = String(Math.abs(minor)).padStart(exp + 1, "0");
  let whole = exp > 0 ? s.slice(0, s.length - exp) : s;
  let frac = exp > 0 ? s.slice(s.length - exp) : "";
  if (dec < exp) { // ISK/HUF/TWD: hundredths shown as whole units
    const n = BigInt(whole + frac);
    const step = 10n ** BigInt(exp - dec);
    let q = n / step; const r = n % step;
    if (r * 2n > step || (r * 2n === step && q % 2n === 1n)) q += 1n;
    whole = String(q); frac = "";
  }
  return (neg ? "−" : "") + group(whole) + (frac ? "." + frac : "");
}

function group(digits) {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

export function pct(r) {
  return r === null || r === undefined ? "—" : (Math.round(r * 10000) / 100).toFixed(2) + "%";
}

export function ratio(r) {
  return r === null || r === undefined ? "—" : (Math.round(r * 100) / 100).toFixed(2);
}

// niceStep is the smallest 1, 2 or 5 × 10^k that is at least rough.
function niceStep(rough) {
  const mag = 10 ** Math.floor(Math.log10(rough));
  for (const m of [1, 2, 5, 10]) if (m * mag >= rough * (1 - 1e-9)) return m * mag;
  return 10 * mag;
}

// niceScale picks round ticks covering [lo, hi] with about `want` steps:
// every tick is a multiple of a step of 1, 2 or 5 × 10^k, and no step is
// finer than minStep (one displayed unit of money, one customer).
// Returns {lo, hi, step, ticks}.
export function niceScale(lo, hi, want, minStep) {
  if (!(hi > lo)) hi = lo + (minStep || 1);
  let step = niceStep((hi - lo) / Math.max(1, want));
  if (minStep && step < minStep) step = minStep;
  const a = Math.floor(lo / step + 1e-9), b = Math.ceil(hi / step - 1e-9);
  const ticks = [];
  for (let i = a; i <= b; i++) ticks.push(Number((i * step).toPrecision(12)));
  return { lo: a * step, hi: b * step, step, ticks };
}

// moneyTick labels an axis tick in major units: whole numbers when the
// step is whole units (so 20 rather than 20.00), compact above a million.
export function moneyTick(minor, exp, dec, step) {
  const unit = 10 ** exp;
  if (step % unit !== 0) return money(minor, exp, exp);
  const major = minor / unit;
  const abs = Math.abs(major), sign = major < 0 ? "−" : "";
  if (abs >= 1e6 && step / unit >= 1e5) return sign + trim(abs / 1e6) + "M";
  if (abs >= 1e4 && step / unit >= 1e3) return sign + trim(abs / 1e3) + "k";
  return sign + group(String(abs));
}

function trim(n) {
  return String(Number(n.toFixed(2)));
}

// pctTick labels a rate tick with as many decimals as the step needs.
export function pctTick(r, step) {
  const d = Math.max(0, -Math.floor(Math.log10(step * 100) + 1e-9));
  const v = r * 100;
  return (v < 0 ? "−" : "") + Math.abs(v).toFixed(d) + "%";
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

// periodLabel names a bucket by its first day (YYYY-MM-DD).
export function periodLabel(start, interval) {
  const [y, m, d] = start.split("-");
  const mon = MONTHS[Number(m) - 1];
  if (interval === "month") return `${mon} ${y}`;
  return `${Number(d)} ${mon}`;
}

// longPeriod names a bucket in full, for headings and tooltips.
export function longPeriod(p, interval) {
  if (interval === "month") return periodLabel(p.start, "month");
  if (interval === "day") return `${periodLabel(p.start, "day")} ${p.start.slice(0, 4)}`;
  return `week of ${periodLabel(p.start, "day")} ${p.start.slice(0, 4)}`;
}
