// Drawing arrays: diverging heat-maps, grey images, number tables, labelled figures.

// RdBu-like diverging scale: -1 blue, 0 white, +1 red.
const NEG = [33, 102, 172];
const POS = [178, 24, 43];

export function diverging(t) {
  const s = Math.max(-1, Math.min(1, t));
  const end = s < 0 ? NEG : POS;
  const a = Math.abs(s);
  return [255 + (end[0] - 255) * a, 255 + (end[1] - 255) * a, 255 + (end[2] - 255) * a];
}

function sequential(t) {  // white -> dark red, for maps in [0, 1]
  const a = Math.max(0, Math.min(1, t));
  return [255 - 60 * a, 255 - 230 * a, 255 - 220 * a];
}

export function maxAbs(data, start = 0, end = data.length) {
  let m = 0;
  for (let i = start; i < end; i++) { const v = Math.abs(data[i]); if (v > m) m = v; }
  return m;
}

// Paints h*w values from data[offset..] on a canvas of h x w pixels.
// kind: "diverging" (scale = max |v|), "gray" (values in [0, 1]), "heat" (in [0, scale]).
export function paint(canvas, data, h, w, { offset = 0, scale = 1, kind = "diverging" } = {}) {
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  const inv = scale > 0 ? 1 / scale : 0;
  for (let i = 0; i < h * w; i++) {
    const v = data[offset + i];
    let rgb;
    if (kind === "gray") { const g = Math.max(0, Math.min(1, v)) * 255; rgb = [g, g, g]; }
    else if (kind === "heat") rgb = sequential(v * inv);
    else rgb = diverging(v * inv);
    img.data[4 * i] = rgb[0]; img.data[4 * i + 1] = rgb[1]; img.data[4 * i + 2] = rgb[2];
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return canvas;
}

// An image (C, H, W) in [0, 1]: grey for 1 channel, RGB for 3, the first channel otherwise.
export function paintImage(canvas, data, shape) {
  const [c, h, w] = shape;
  if (c !== 3) return paint(canvas, data, h, w, { kind: "gray" });
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  const clamp = (v) => Math.max(0, Math.min(1, v)) * 255;
  for (let i = 0; i < h * w; i++) {
    for (let k = 0; k < 3; k++) img.data[4 * i + k] = clamp(data[k * h * w + i]);
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return canvas;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

export const fmt = (v, digits = 4) => (Number.isFinite(v) ? v.toFixed(digits) : String(v));
export const sci = (v) => (v === 0 ? "0" : v.toExponential(2));

const tooltip = () => document.getElementById("tooltip");

// Shows the value under the pointer; canvas pixels map to array cells.
function hoverValues(canvas, data, h, w, offset) {
  canvas.addEventListener("mousemove", (event) => {
    const r = canvas.getBoundingClientRect();
    const x = Math.floor((event.clientX - r.left) / r.width * w);
    const y = Math.floor((event.clientY - r.top) / r.height * h);
    if (x < 0 || y < 0 || x >= w || y >= h) return;
    const tip = tooltip();
    tip.hidden = false;
    tip.textContent = `(${y}, ${x}) ${fmt(data[offset + y * w + x], 5)}`;
    tip.style.left = `${event.clientX + 12}px`;
    tip.style.top = `${event.clientY + 12}px`;
  });
  canvas.addEventListener("mouseleave", () => { tooltip().hidden = true; });
}

// A captioned heat-map of one (h, w) slice; data-values holds the numbers shown, for tests
// and for anyone who wants them (JSON, full float32 precision).
export function heat(caption, data, h, w, opts = {}) {
  const offset = opts.offset || 0;
  const scale = opts.scale ?? maxAbs(data, offset, offset + h * w);
  const canvas = paint(el("canvas"), data, h, w, { ...opts, offset, scale });
  const size = opts.size || Math.max(100, Math.min(168, 8 * Math.max(h, w)));
  canvas.style.width = `${size * w / Math.max(h, w)}px`;
  canvas.style.height = `${size * h / Math.max(h, w)}px`;
  canvas.dataset.shape = JSON.stringify([h, w]);
  canvas.dataset.values = JSON.stringify(Array.from(data.subarray(offset, offset + h * w)));
  if (opts.test) canvas.dataset.test = opts.test;
  hoverValues(canvas, data, h, w, offset);
  return el("figure", { class: "heat" }, canvas, el("div", { class: "caption", text: caption }));
}

// A table of h x w numbers from data[offset..]; cells carry data-value (full precision).
export function table(data, h, w, { offset = 0, digits = 3, test = null, highlight = -1 } = {}) {
  const t = el("table", { class: "nums" });
  if (test) t.dataset.test = test;
  const m = maxAbs(data, offset, offset + h * w) || 1;
  for (let y = 0; y < h; y++) {
    const tr = el("tr");
    for (let x = 0; x < w; x++) {
      const v = data[offset + y * w + x];
      const td = el("td", { text: fmt(v, digits) });
      td.dataset.value = String(v);
      td.style.background = `rgb(${diverging(0.55 * v / m)})`;  // text stays legible
      if (y * w + x === highlight) td.className = "max";
      tr.append(td);
    }
    t.append(tr);
  }
  return t;
}
