// Backward detail: δ at a conv layer's output, zero-inserted, padded by K−1, the rotated
// kernel, δ at the input by the lecture's formula and by cnnlab's engine, and dW = A ⋆ δ.
import { decode, post } from "./api.js";
import { el, heat, maxAbs, sci, table } from "./render.js";

export function setupBackward(state) {
  const classes = document.getElementById("bw-class");
  const layers = document.getElementById("bw-layer");
  classes.replaceChildren(...state.model.class_names.map((name, k) =>
    el("option", { value: String(k), text: `${k}: ${name}` })));
  const convs = state.model.layers.filter((l) => l.type === "Conv2D");
  layers.replaceChildren(...convs.map((l) => el("option", { value: l.name,
    text: `${l.name} (${l.output_shape.join("×")})` })));
  const filter = document.getElementById("bw-filter");
  const update = () => {
    const layer = convs.find((l) => l.name === layers.value);
    if (layer) {
      filter.max = String(layer.filters - 1);
      document.getElementById("bw-channel").max = String(layer.input_shape[0] - 1);
    }
  };
  layers.onchange = update;
  update();
  document.getElementById("bw-run").onclick = () => showBackward(state).catch(state.fail);
  document.getElementById("backward-detail").replaceChildren(
    el("p", { class: "muted", text: convs.length ? "Pick a class and a conv layer."
      : "This model has no 2-D convolution." }));
}

function clampInt(input) {
  const v = Math.max(0, Math.min(Number(input.max || 0), Math.floor(Number(input.value) || 0)));
  input.value = String(v);
  return v;
}

export async function showBackward(state) {
  const box = document.getElementById("backward-detail");
  const f = clampInt(document.getElementById("bw-filter"));
  const c = clampInt(document.getElementById("bw-channel"));
  const r = await post(state.api("backward"), {
    input: state.input, class: Number(document.getElementById("bw-class").value),
    layer: document.getElementById("bw-layer").value, filter: f,
    objective: document.getElementById("bw-objective").value,
  });
  const a = Object.fromEntries(["delta", "delta_inserted", "delta_padded", "kernel_rotated",
    "dx_filter", "dx_formula", "dx_engine", "dw_formula", "dw_engine"].map(
    (k) => [k, decode(r[k])]));
  const slice = (array, k) => {
    const [, h, w] = array.shape;
    return { h, w, offset: k * h * w };
  };
  const show = (caption, array, k, test, scale) => {
    const s = slice(array, k);
    return heat(caption, array.data, s.h, s.w, { offset: s.offset, test, scale });
  };
  const stride = r.stride.some((s) => s > 1);
  const [kh, kw] = r.kernel_size;
  const d = slice(a.delta, f);
  const dxScale = Math.max(maxAbs(a.dx_formula.data), maxAbs(a.dx_engine.data)) || 1;
  const objective = r.objective === "logit" ? `the logit of class ${r.class}`
    : `the cross-entropy E with class ${r.class} as the label`;
  const same = (diff, scale) => diff <= 1e-4 * Math.max(1, scale);
  const verdict = (diff, scale, test) => el("span", { "data-test": test,
    "data-value": String(diff), class: same(diff, scale) ? "equal" : "unequal",
    text: `max |formula − engine| = ${sci(diff)}${same(diff, scale) ? " (equal)" : ""}` });
  const steps = el("div", { class: "row" },
    show(`δ = ∂E/∂Z at ${r.layer}'s output, filter ${f} (${d.h}×${d.w})`, a.delta, f, "bw-delta"),
    stride ? show(`zero-inserted (stride ${r.stride.join(",")})`, a.delta_inserted, f,
      "bw-delta-inserted") : el("span", { class: "muted", "data-test": "bw-no-insertion",
      text: "stride 1: no zeros to insert" }),
    show(`padded by K−1 = ${kh - 1}`, a.delta_padded, f, "bw-delta-padded"),
    el("figure", { class: "heat" }, table(a.kernel_rotated.data, kh, kw,
      { offset: c * kh * kw, test: "bw-kernel-rotated" }),
    el("div", { class: "caption", text: `W rotated 180°, input channel ${c}` })),
    show(`filter ${f}'s share of δ_in, channel ${c}`, a.dx_filter, c, "bw-dx-filter"));
  const result = el("div", { class: "row" },
    show(`δ_in by the formula Σ_f full-conv(δ_f, rot180 W_f), channel ${c}`, a.dx_formula, c,
      "bw-dx-formula", dxScale),
    show(`δ_in by cnnlab's backward, channel ${c}`, a.dx_engine, c, "bw-dx-engine", dxScale),
    verdict(r.dx_max_difference, dxScale, "bw-dx-difference"));
  const dwScale = Math.max(maxAbs(a.dw_formula.data), maxAbs(a.dw_engine.data)) || 1;
  const dw = el("div", { class: "row" },
    el("figure", { class: "heat" }, table(a.dw_formula.data, kh, kw,
      { offset: c * kh * kw, test: "bw-dw-formula", digits: 4 }),
    el("div", { class: "caption", text: `dW = A ⋆ δ, filter ${f}, channel ${c}` })),
    el("figure", { class: "heat" }, table(a.dw_engine.data, kh, kw,
      { offset: c * kh * kw, test: "bw-dw-engine", digits: 4 }),
    el("div", { class: "caption", text: "dW by cnnlab's backward" })),
    verdict(r.dw_max_difference, dwScale, "bw-dw-difference"),
    el("span", { "data-test": "bw-db", "data-value": String(r.db),
      text: `db = Σ δ = ${r.db.toFixed(5)}` }));
  box.replaceChildren(
    el("p", { "data-test": "bw-title" }, `Gradient of ${objective} (E = ${r.value.toFixed(4)}),`
      + ` flowing back through ${r.layer} (kernel ${kh}×${kw}, stride ${r.stride.join(",")},`
      + ` padding ${r.padding.join(",")}).`),
    steps, el("h3", { text: "δ at the layer's input" }), result,
    el("h3", { text: "Weight gradient" }), dw);
}
