// Small helpers for the animation stage: SVG overlays and the conv's input from predict.
import { decode } from "./api.js";

const NS = "http://www.w3.org/2000/svg";

export function SVG(tag, attrs = {}) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

export function rect(x, y, w, h, colour) {
  return SVG("rect", { x, y, width: w, height: h, fill: "none", stroke: colour,
    "stroke-width": 2 });
}

// The conv's input as the predict reply holds it: a layer's maps, or for "input" the
// normalised image (x − mean) / std, as the model sees it.
export function layerInput(state, name) {
  if (name !== "input") {
    const layer = state.prediction.layers.find((l) => l.name === name);
    return decode(layer.maps);
  }
  const image = decode(state.prediction.input);
  const norm = state.model.normalization;
  if (!norm) return image;
  const [c, h, w] = image.shape;
  const data = new Float32Array(image.data.length);
  for (let k = 0; k < c; k++) {
    const mean = Array.isArray(norm.mean) ? norm.mean[k] : norm.mean;
    const std = Array.isArray(norm.std) ? norm.std[k] : norm.std;
    for (let i = 0; i < h * w; i++) data[k * h * w + i] = (image.data[k * h * w + i] - mean) / std;
  }
  return { shape: image.shape, data };
}

// A[c, y, x], zero outside the map (the zero padding).
export function valueAt(array, c, y, x) {
  const [, h, w] = array.shape;
  if (y < 0 || x < 0 || y >= h || x >= w) return 0;
  return array.data[(c * h + y) * w + x];
}
