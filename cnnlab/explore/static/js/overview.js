// The overview: every layer of the model as a column of feature maps, read from the predict
// reply and the model description (never a fixed architecture).
import { decode } from "./api.js";
import { el, fmt, maxAbs, paint } from "./render.js";

// Layers that keep a unit's position: a click on them explains the conv or dense unit before.
const ELEMENTWISE = new Set(["BatchNorm", "BatchNorm2D", "BatchNorm1D", "ReLU", "LeakyReLU",
  "Dropout", "Activation", "Sigmoid", "Tanh", "Softmax", "ELU", "GELU", "Identity"]);
const POOLS = new Set(["MaxPool2D", "AvgPool2D", "AveragePool2D", "MaxPooling2D"]);
const VECTOR_ROWS = 128;

// The conv or dense layer whose unit a click on `name` at (c, y, x) is about, or null.
export function owner(model, name, c, y, x) {
  const byName = new Map(model.layers.map((l) => [l.name, l]));
  let layer = byName.get(name);
  while (layer) {
    if (layer.type === "Conv2D") return { kind: "conv", layer: layer.name, c, y, x };
    if (layer.type === "Dense") return { kind: "dense", layer: layer.name, unit: c };
    if (POOLS.has(layer.type) && layer.stride) {
      y *= layer.stride[0]; x *= layer.stride[1];
    } else if (!ELEMENTWISE.has(layer.type)) return null;
    layer = byName.get(layer.input_layer);
  }
  return null;
}

function scales(layers, mode) {
  const global = Math.max(...layers.map((l) => maxAbs(l.values.data)), 1e-12);
  return layers.map((l) => {
    const count = l.shape.length === 3 ? l.shape[0] : 1;
    const per = l.values.data.length / count;
    const layerMax = maxAbs(l.values.data) || 1e-12;
    return Array.from({ length: count }, (_, m) => {
      if (mode === "global") return global;
      if (mode === "layer") return layerMax;
      return maxAbs(l.values.data, m * per, (m + 1) * per) || 1e-12;
    });
  });
}

function cellFromEvent(event, canvas, h, w) {
  const r = canvas.getBoundingClientRect();
  const x = Math.min(w - 1, Math.max(0, Math.floor((event.clientX - r.left) / r.width * w)));
  const y = Math.min(h - 1, Math.max(0, Math.floor((event.clientY - r.top) / r.height * h)));
  return [y, x];
}

// Renders the columns; onUnit(target) with target from `owner` when a unit is clicked.
export function renderOverview(container, state, onUnit) {
  const mode = document.getElementById("scaling").value;
  const layers = state.prediction.layers.map((l) => ({ ...l, values: decode(l.maps) }));
  const layerScales = scales(layers, mode);
  const last = layers.length - 1;
  container.replaceChildren();
  layers.forEach((layer, li) => {
    const col = el("div", { class: "layer-col", "data-test": "layer-col",
      "data-layer": layer.name });
    col.append(el("div", { class: "title",
      text: `${layer.name}\n${layer.type} ${layer.shape.join("×")}` }));
    if (layer.shape.length === 3) {
      const [count, h, w] = layer.shape;
      const size = Math.max(36, Math.min(64, 3 * Math.max(h, w)));
      for (let m = 0; m < count; m++) {
        const canvas = paint(el("canvas"), layer.values.data, h, w,
          { offset: m * h * w, scale: layerScales[li][m] });
        canvas.style.width = `${size * w / Math.max(h, w)}px`;
        canvas.style.height = `${size * h / Math.max(h, w)}px`;
        canvas.dataset.test = "feature-map";
        canvas.dataset.layer = layer.name;
        canvas.dataset.channel = String(m);
        canvas.dataset.scale = String(layerScales[li][m]);
        canvas.title = `${layer.name}[${m}] max ${fmt(layer.max[m], 3)}`;
        canvas.addEventListener("click", (event) => {
          const [y, x] = cellFromEvent(event, canvas, h, w);
          select(container, canvas);
          onUnit(owner(state.model, layer.name, m, y, x), { layer: layer.name, c: m, y, x });
        });
        col.append(canvas);
      }
    } else if (li === last) {
      col.append(outputList(layer, state.model.class_names, (unit) =>
        onUnit(owner(state.model, layer.name, unit, 0, 0), { layer: layer.name, c: unit })));
    } else {
      col.classList.add("vector");
      col.append(vectorCanvas(layer, layerScales[li][0], state, container, onUnit));
    }
    container.append(col);
  });
  document.getElementById("legend").textContent = "Colour: blue < 0 < red, white = 0; "
    + `scale ${mode === "unit" ? "per unit" : mode === "layer" ? "per layer" : "global"}.`;
}

function select(container, node) {
  container.querySelectorAll(".selected").forEach((n) => n.classList.remove("selected"));
  node.classList.add("selected");
}

// A 1-D layer as a block of cells, VECTOR_ROWS tall, column-major (unit = col * rows + row).
function vectorCanvas(layer, scale, state, container, onUnit) {
  const n = layer.shape[0];
  const rows = Math.min(n, VECTOR_ROWS);
  const cols = Math.ceil(n / rows);
  const grid = new Float32Array(rows * cols);
  for (let u = 0; u < n; u++) {
    grid[(u % rows) * cols + Math.floor(u / rows)] = layer.values.data[u];
  }
  const canvas = paint(el("canvas"), grid, rows, cols, { scale });
  canvas.style.width = `${Math.min(60, 6 * cols)}px`;
  canvas.style.height = `${Math.max(rows * 3, 60)}px`;
  canvas.dataset.test = "vector";
  canvas.dataset.layer = layer.name;
  canvas.addEventListener("click", (event) => {
    const [row, c] = cellFromEvent(event, canvas, rows, cols);
    const unit = c * rows + row;
    if (unit >= n) return;
    select(container, canvas);
    onUnit(owner(state.model, layer.name, unit, 0, 0), { layer: layer.name, c: unit });
  });
  return canvas;
}

function outputList(layer, names, onClick) {
  const list = el("ol", { class: "outputs", start: "0" });
  const scale = maxAbs(layer.values.data) || 1;
  layer.values.data.forEach((v, k) => {
    const bar = el("span", { class: "bar" });
    bar.style.width = `${Math.round(40 * Math.abs(v) / scale)}px`;
    list.append(el("li", { "data-test": "output-unit", "data-unit": String(k),
      onclick: () => onClick(k) }, `${names[k] ?? k} ${fmt(v, 3)}`, bar));
  });
  return list;
}
