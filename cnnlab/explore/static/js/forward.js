// Forward detail: one conv unit (receptive field, kernel, products, sum + bias, the layers
// after it, the pooling window), animated across positions; or one dense unit.
import { decode, post } from "./api.js";
import { el, fmt, heat, maxAbs, paint, paintImage, table } from "./render.js";
import { SVG, layerInput, rect, valueAt } from "./stage.js";


export async function showConv(state, target) {
  const box = document.getElementById("forward-detail");
  const reply = await post(state.api("forward"), { input: state.input, layer: target.layer,
    channel: target.c, y: target.y, x: target.x });
  box.replaceChildren(...convDetail(state, target, reply));
}

function convDetail(state, target, r) {
  const patch = decode(r.patch);
  const kernel = decode(r.kernel);
  const products = decode(r.products);
  const [cin, kh, kw] = kernel.shape;
  const n = kh * kw;
  const title = el("p", { "data-test": "fw-title" },
    el("strong", { text: `${r.layer}, filter ${r.channel}` }),
    ` at output position (${r.y}, ${r.x}); kernel ${r.kernel_size.join("×")}, stride `
    + `${r.stride.join(",")}, padding ${r.padding.join(",")}; input: ${r.input_layer}`);
  const field = receptiveField(state, r);
  const stage = animation(state, target, r, kernel);
  const tables = el("div", { class: "tables", "data-test": "fw-products" });
  for (let c = 0; c < cin; c++) {
    let partial = 0;
    for (let i = 0; i < n; i++) partial += products.data[c * n + i];
    tables.append(el("figure", {},
      el("figcaption", { text: `ch ${c}: input · kernel = products (Σ ${fmt(partial)})` }),
      el("div", { class: "row" },
        table(patch.data, kh, kw, { offset: c * n, test: "fw-patch" }),
        table(kernel.data, kh, kw, { offset: c * n, test: "fw-kernel" }),
        table(products.data, kh, kw, { offset: c * n, test: "fw-product", digits: 4 }))));
  }
  const kernels = el("div", { class: "map-grid" });
  const kscale = maxAbs(kernel.data);
  for (let c = 0; c < cin; c++) {
    kernels.append(heat(`k[${c}]`, kernel.data, kh, kw, { offset: c * n, scale: kscale,
      size: 40 }));
  }
  const eq = el("div", { class: "equation", "data-test": "fw-equation" },
    "Σ products = ", num("fw-sum", r.sum), " ; + bias ", num("fw-bias", r.bias), " = ",
    num("fw-pre", r.pre_activation), " (engine: ", num("fw-engine", r.engine), ")");
  const chain = el("div", { class: "equation", "data-test": "fw-chain" }, "z = ",
    num(null, r.pre_activation));
  for (const step of r.after) {
    chain.append(` → ${step.type} (${step.layer}) → `, num("fw-after", step.value, step.type));
  }
  const shown = overviewValue(state, r.after.length ? r.after.at(-1).layer : r.layer, r);
  chain.append(el("br"), "activation = ", num("fw-activation", r.activation),
    shown == null ? "" : " ; in the overview: ", shown == null ? "" :
      num("fw-overview-value", shown));
  const parts = [title, el("div", { class: "row" }, field, stage), eq, chain,
    el("h3", { text: "The kernel, per input channel" }), kernels,
    el("h3", { text: "Element-wise products at this position" }), tables];
  if (r.pool) parts.push(pooling(r.pool));
  return parts;
}

function num(test, value, kind) {
  const span = el("span", { text: fmt(value) });
  if (test) span.dataset.test = test;
  if (kind) span.dataset.kind = kind;
  span.dataset.value = String(value);
  return span;
}

// The unit's value as the overview drew it: the last element-wise layer after the conv.
function overviewValue(state, name, r) {
  const layer = state.prediction.layers.find((l) => l.name === name);
  if (!layer || layer.shape.length !== 3) return null;
  const [, h, w] = layer.shape;
  return decode(layer.maps).data[r.channel * h * w + r.y * w + r.x];
}

function receptiveField(state, r) {
  const image = decode(state.prediction.input);
  const [, h, w] = image.shape;
  const canvas = paintImage(el("canvas"), image.data, image.shape);
  const scale = Math.max(2, Math.floor(168 / Math.max(h, w)));
  canvas.style.width = `${w * scale}px`; canvas.style.height = `${h * scale}px`;
  const svg = SVG("svg", { width: w * scale, height: h * scale });
  const f = r.receptive_field;
  svg.append(rect(f.x0 * scale, f.y0 * scale, (f.x1 - f.x0) * scale, (f.y1 - f.y0) * scale,
    "#fdb863"));
  return el("figure", { class: "heat", "data-test": "fw-receptive-field",
    "data-field": JSON.stringify(f) }, el("div", { class: "anim-stage" }, canvas, svg),
  el("div", { class: "caption", text: `receptive field on the input: rows ${f.y0}–${f.y1 - 1},`
    + ` columns ${f.x0}–${f.x1 - 1}` }));
}

// The filter sliding over its input: each step computes Σ K·A + b at one position (in the
// page, from the predict reply's maps) and fills the output map; stopping asks the server for
// that position's exact products.
function animation(state, target, r, kernel) {
  const input = layerInput(state, r.input_layer);
  const [cin, ih, iw] = input.shape;
  const [, kh, kw] = kernel.shape;
  const map = decode(r.map);
  const [oh, ow] = map.shape;
  const bias = r.bias;
  const ch = Number(state.animChannel || 0) % cin;
  const CELL = Math.max(4, Math.floor(200 / Math.max(ih, iw)));  // screen px per map cell
  const inCanvas = paint(el("canvas"), input.data, ih, iw,
    { offset: ch * ih * iw, scale: maxAbs(input.data, ch * ih * iw, (ch + 1) * ih * iw) });
  inCanvas.style.width = `${iw * CELL}px`; inCanvas.style.height = `${ih * CELL}px`;
  const svg = SVG("svg", { width: iw * CELL, height: ih * CELL });
  const [dy, dx] = r.dilation || [1, 1];
  const win = rect(0, 0, ((kw - 1) * dx + 1) * CELL, ((kh - 1) * dy + 1) * CELL, "#000");
  svg.append(win);
  const built = Float32Array.from(map.data);  // the whole map until the animation starts
  const outCanvas = el("canvas");
  outCanvas.style.width = `${ow * CELL}px`; outCanvas.style.height = `${oh * CELL}px`;
  const scale = maxAbs(map.data) || 1;
  const readout = el("div", { class: "equation", "data-test": "fw-anim-readout" });
  let pos = r.y * ow + r.x;
  let timer = null;
  const draw = () => {
    const y = Math.floor(pos / ow); const x = pos % ow;
    const y0 = y * r.stride[0] - r.padding[0]; const x0 = x * r.stride[1] - r.padding[1];
    win.setAttribute("x", x0 * CELL); win.setAttribute("y", y0 * CELL);
    let sum = 0;
    for (let c = 0; c < cin; c++) {
      for (let u = 0; u < kh; u++) {
        for (let v = 0; v < kw; v++) {
          sum += kernel.data[(c * kh + u) * kw + v] * valueAt(input, c, y0 + u * dy,
            x0 + v * dx);
        }
      }
    }
    built[pos] = sum + bias;
    paint(outCanvas, built, oh, ow, { scale });
    readout.textContent = `(${y}, ${x}): Σ K·A = ${fmt(sum)}; + b = ${fmt(sum + bias)}`;
  };
  const stop = () => { clearInterval(timer); timer = null; play.textContent = "Animate"; };
  const play = el("button", { "data-test": "fw-animate", text: "Animate", onclick: () => {
    if (timer) {
      stop();
      const y = Math.floor(pos / ow);
      showConv(state, { ...target, y, x: pos % ow }).catch(state.fail);
      return;
    }
    if (pos >= oh * ow - 1) pos = 0;
    built.fill(0);
    for (let k = 0; k <= pos; k++) built[k] = map.data[k];
    play.textContent = "Stop here";
    const step = Math.max(1, Math.ceil(oh * ow / 400));  // a whole pass in about 400 ticks
    timer = setInterval(() => {
      for (let k = 0; k < step && pos < oh * ow - 1; k++) { pos += 1; draw(); }
      if (pos >= oh * ow - 1) stop();
    }, 25);
  } });
  outCanvas.addEventListener("click", (event) => {
    const b = outCanvas.getBoundingClientRect();
    const x = Math.floor((event.clientX - b.left) / b.width * ow);
    const y = Math.floor((event.clientY - b.top) / b.height * oh);
    stop();
    showConv(state, { ...target, y, x }).catch(state.fail);
  });
  const chooser = el("input", { type: "number", min: "0", max: String(cin - 1),
    value: String(ch), "data-test": "fw-anim-channel" });
  chooser.addEventListener("change", () => {
    state.animChannel = chooser.value;
    showConv(state, target).catch(state.fail);
  });
  draw();
  return el("div", {},
    el("div", { class: "row" }, play, el("label", {}, "input channel shown ", chooser)),
    el("div", { class: "row" },
      el("div", { class: "anim-stage" }, inCanvas, svg),
      el("div", {}, outCanvas, el("div", { class: "caption muted",
        text: "conv output (before the activation); click a position" }))),
    readout);
}

function pooling(pool) {
  const values = decode(pool.values);
  const [ph, pw] = values.shape;
  const average = pool.kind === "avg";
  const highlight = average ? -1 : pool.argmax[0] * pw + pool.argmax[1];
  return el("div", { "data-test": "fw-pool" },
    el("h3", { text: `Pooling (${pool.layer}, ${pool.pool_size.join("×")}, stride `
      + `${pool.stride.join(",")}) → output (${pool.y}, ${pool.x})` }),
    el("div", { class: "row" }, table(values.data, ph, pw, { highlight, test: "fw-pool-window" }),
      average ? el("span", {}, "mean = ", num("fw-pool-mean", pool.output))
        : el("span", {}, "max = ", num("fw-pool-max", pool.max))));
}

export async function showDense(state, target) {
  const box = document.getElementById("forward-detail");
  const r = await post(state.api("dense"), { input: state.input, layer: target.layer,
    unit: target.unit, top: 12 });
  const rows = el("table", { class: "nums", "data-test": "dense-weights" },
    el("tr", {}, ...["input", "position", "weight", "input value", "product"].map(
      (t) => el("th", { text: t }))));
  for (const w of r.weights) {
    rows.append(el("tr", {}, el("td", { text: String(w.index) }),
      el("td", { text: w.position ? `(${w.position.join(", ")})` : "" }),
      el("td", { text: fmt(w.weight) }), el("td", { text: fmt(w.input) }),
      el("td", { text: fmt(w.product) })));
  }
  const logits = el("ol", { start: "0", "data-test": "dense-logits" });
  r.logits.forEach((v, k) => logits.append(el("li", {},
    `${r.class_names[k]}: logit ${fmt(v, 3)}, p = ${fmt(r.probabilities[k], 3)}`)));
  box.replaceChildren(
    el("p", {}, el("strong", { text: `${r.layer}, unit ${r.unit}` }),
      ` (input: ${r.input_layer})`),
    denseChain(r),
    el("h3", { text: "Largest weights (by |w|)" }), rows,
    el("h3", { text: "Logits" }), logits);
}

function denseChain(r) {
  const line = el("div", { class: "equation", "data-test": "dense-chain" }, "Σ w·x + b = ",
    num("dense-pre", r.pre_activation), " (bias ", num("dense-bias", r.bias), ")");
  for (const step of r.after || []) {
    line.append(` → ${step.type} (${step.layer}) → `, num("dense-after", step.value, step.type));
  }
  line.append(el("br"), "activation = ", num("dense-activation", r.activation));
  return line;
}
