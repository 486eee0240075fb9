// Side panels: first-layer filters, gradient saliency and Grad-CAM, occlusion on demand,
// activation maximisation for the clicked unit.
import { decode, get, post, waitJob } from "./api.js";
import { el, heat, maxAbs, paintImage } from "./render.js";

export async function showFilters(state) {
  const box = document.getElementById("filters");
  box.replaceChildren();
  if (!state.model.layers.some((l) => l.type === "Conv2D")) {
    box.append(el("p", { class: "muted", text: "No conv layer." }));
    return;
  }
  const r = await get(`${state.api("filters")}`);
  const w = decode(r.weights);
  const [count, cin, kh, kw] = w.shape;
  const scale = maxAbs(w.data);
  for (let f = 0; f < count; f++) {
    if (cin === 3) {  // colour filters as images, each rescaled to [0, 1] around grey
      const part = w.data.subarray(f * 3 * kh * kw, (f + 1) * 3 * kh * kw);
      const m = maxAbs(part) || 1;
      const canvas = paintImage(el("canvas"), part.map((v) => 0.5 + 0.5 * v / m),
        [3, kh, kw]);
      canvas.dataset.test = "filter";
      box.append(canvas);
    } else {
      box.append(heat(`${f}`, w.data, kh, kw, { offset: f * cin * kh * kw, scale, size: 40,
        test: "filter" }));
    }
  }
}

export async function showSaliency(state) {
  const r = await post(state.api("saliency"), { input: state.input, class: null, layer: null });
  const g = decode(r.gradient);
  const c = decode(r.gradcam);
  const [h, w] = g.shape;
  const name = state.model.class_names[r.class] ?? r.class;
  document.getElementById("saliency").replaceChildren(
    heat(`gradient saliency, class ${name}`, g.data, h, w, { kind: "heat", scale: 1,
      test: "saliency-gradient" }),
    heat(`Grad-CAM at ${r.gradcam_layer}`, c.data, h, w, { kind: "heat", scale: 1,
      test: "saliency-gradcam" }),
    overlay(decode(state.prediction.input), c.data, "Grad-CAM over the input"));
}

// The image in grey with a heat-map (values in [0, 1]) blended over it in red.
function overlay(image, map, caption) {
  const [channels, h, w] = image.shape;
  const canvas = el("canvas", { width: String(w), height: String(h) });
  const ctx = canvas.getContext("2d");
  const out = ctx.createImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    let grey = 0;
    for (let k = 0; k < channels; k++) grey += image.data[k * h * w + i] / channels;
    const a = Math.max(0, Math.min(1, map[i])) * 0.7;
    const g = 255 * Math.max(0, Math.min(1, grey)) * 0.8;
    out.data[4 * i] = g * (1 - a) + 230 * a;
    out.data[4 * i + 1] = g * (1 - a) + 30 * a;
    out.data[4 * i + 2] = g * (1 - a) + 20 * a;
    out.data[4 * i + 3] = 255;
  }
  ctx.putImageData(out, 0, 0);
  const size = Math.max(100, Math.min(168, 8 * Math.max(h, w)));
  canvas.style.width = `${size * w / Math.max(h, w)}px`;
  canvas.style.height = `${size * h / Math.max(h, w)}px`;
  canvas.dataset.test = "saliency-overlay";
  return el("figure", { class: "heat" }, canvas, el("div", { class: "caption", text: caption }));
}

export function setupJobs(state) {
  const occButton = document.getElementById("occlusion-run");
  const occProgress = document.getElementById("occlusion-progress");
  occButton.addEventListener("click", () => runJob(state, occButton, occProgress,
    "occlusion", { input: state.input, class: null }, (result) => {
      const m = decode(result.map);
      const [h, w] = m.shape;
      const name = state.model.class_names[result.class] ?? result.class;
      document.getElementById("occlusion").replaceChildren(heat(
        `drop in p(${name}) when a ${result.patch}px patch covers each place`
        + ` (stride ${result.stride})`, m.data, h, w, { test: "occlusion-map" }));
    }));
  const maxButton = document.getElementById("maximize-run");
  const maxProgress = document.getElementById("maximize-progress");
  maxButton.addEventListener("click", () => {
    const unit = state.selected;
    if (!unit) return;
    const steps = Math.max(1, Math.min(512,
      Number(document.getElementById("maximize-steps").value) || 64));
    runJob(state, maxButton, maxProgress, "maximize",
      { layer: unit.layer, unit: unit.kind === "conv" ? unit.c : unit.unit, steps, seed: 0 },
      (result) => {
        const image = decode(result.image);
        const canvas = paintImage(el("canvas"), image.data, image.shape);
        canvas.style.width = "140px"; canvas.style.height = "140px";
        canvas.className = "pixelated";
        canvas.dataset.test = "maximize-image";
        document.getElementById("maximize").replaceChildren(el("figure", { class: "heat" },
          canvas, el("div", { class: "caption", text: `${result.layer}[${result.unit}]: `
            + `activation ${result.activation.toFixed(3)} after ${steps} steps` })));
      });
  });
}

async function runJob(state, button, progress, kind, body, done) {
  button.disabled = true;
  progress.hidden = false;
  progress.value = 0;
  try {
    const { job } = await post(state.api(kind), body);
    done(await waitJob(job, (p) => { progress.value = p; }));
  } catch (e) {
    state.fail(e);
  } finally {
    button.disabled = kind === "maximize" && !state.selected;
    progress.hidden = true;
  }
}
