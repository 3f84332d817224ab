// SVG charts for the finance dashboard, drawn at the container's pixel
// width (not scaled down from a fixed width: text stays 11 px on a phone).
import { niceScale, periodLabel } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";

export function el(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// Points are drawn only when they do not overlap: past this many buckets
// (a day view) the line alone shows the shape and hover columns the values.
export const MAX_POINTS = 62;

// frame starts an SVG sized to box, with a y scale over [lo, hi] (round
// ticks labelled by tickFmt(value, step)) and one slot per period.
export function frame(box, label, periods, lo, hi, tickFmt, minStep) {
  const W = Math.max(280, Math.floor(box.clientWidth || 900));
  const narrow = W < 560;
  const H = narrow ? 210 : 260;
  const sc = niceScale(lo, hi, narrow ? 4 : 5, minStep);
  const labels = sc.ticks.map((v) => tickFmt(v, sc.step));
  const l = 12 + 6.5 * Math.max(...labels.map((s) => s.length));
  const f = { W, H, l, r: 12, t: 18, b: 34, narrow, periods };
  const svg = el("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label });
  f.svg = svg;
  f.slot = (W - f.l - f.r) / Math.max(1, periods.length);
  f.x = (i) => f.l + f.slot * (i + 0.5);
  f.y = (v) => f.t + (H - f.t - f.b) * (1 - (v - sc.lo) / (sc.hi - sc.lo));
  sc.ticks.forEach((v, i) => {
    svg.appendChild(el("line", { x1: f.l, x2: W - f.r, y1: f.y(v), y2: f.y(v), class: v === 0 ? "zero" : "grid" }));
    svg.appendChild(el("text", { x: f.l - 6, y: f.y(v) + 4, "text-anchor": "end", class: "tick y-tick", "data-value": v }, labels[i]));
  });
  return f;
}

// xAxis labels as many buckets as fit without overlapping.
export function xAxis(f, interval) {
  const ps = f.periods;
  const fit = Math.max(1, Math.floor((f.W - f.l - f.r) / (interval === "month" ? 64 : 52)));
  const every = Math.max(1, Math.ceil(ps.length / fit));
  const half = interval === "month" ? 26 : 20; // half a label's width
  ps.forEach((p, i) => {
    if ((ps.length - 1 - i) % every !== 0) return; // keep the newest label
    let x = f.x(i), anchor = "middle";
    if (x + half > f.W) { x = f.W - 2; anchor = "end"; }
    if (x - half < f.l) { if (i > 0 && every > 1) return; x = Math.max(x, f.l - 4); anchor = "start"; }
    f.svg.appendChild(el("text", { x, y: f.H - f.b + 16, "text-anchor": anchor, class: "tick x-tick" },
      periodLabel(p.start, interval)));
  });
}

// partialBand shades the bucket that contains now: its figures are "so
// far", not a finished period.
export function partialBand(f) {
  f.periods.forEach((p, i) => {
    if (!p.partial) return;
    const x = f.l + f.slot * i;
    f.svg.insertBefore(el("rect", { x, y: f.t, width: f.slot, height: f.H - f.t - f.b, class: "partial-band",
      "data-period": p.start }), f.svg.firstChild);
    const lbl = el("text", { x: Math.min(x + f.slot / 2, f.W - f.r - 2), y: f.t - 5,
      "text-anchor": x + f.slot / 2 > f.W - 40 ? "end" : "middle", class: "partial-label" }, "so far");
    f.svg.appendChild(lbl);
  });
}

// hoverColumns adds an invisible column per bucket carrying its tooltip,
// so every value is reachable without drawing a dot per bucket.
export function hoverColumns(f, title) {
  f.periods.forEach((p, i) => {
    const r = el("rect", { x: f.l + f.slot * i, y: f.t, width: f.slot, height: f.H - f.t - f.b, class: "hover" });
    r.appendChild(el("title", {}, title(p)));
    f.svg.appendChild(r);
  });
}

// line draws one series; the segment into a partial bucket is dashed and
// buckets whose value is null are skipped.
export function line(f, values, cls, attrs) {
  const pts = values.map((v, i) => (v === null || v === undefined ? null : [f.x(i), f.y(v), i]));
  let run = [];
  const flush = () => {
    if (run.length) f.svg.appendChild(el("polyline", { points: run.map((p) => p.slice(0, 2).join(",")).join(" "), class: cls, ...attrs }));
    run = [];
  };
  pts.forEach((p) => {
    if (!p) { flush(); return; }
    if (f.periods[p[2]].partial && run.length) {
      const prev = run[run.length - 1];
      flush();
      f.svg.appendChild(el("polyline", { points: `${prev[0]},${prev[1]} ${p[0]},${p[1]}`, class: cls + " partial", ...attrs }));
      run = [p];
      return;
    }
    run.push(p);
  });
  flush();
  return pts;
}

// legend lists the series drawn in a chart, as HTML beside it.
export function legend(box, items) {
  const d = document.createElement("div"); d.className = "legend";
  for (const [cls, label] of items) {
    const s = document.createElement("span"); s.className = "key " + cls; s.textContent = label; d.appendChild(s);
  }
  box.appendChild(d);
}
