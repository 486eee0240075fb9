// cnnlab explore: the page's state and wiring. Everything about the model comes from the
// server (docs/explore/api.md); nothing here knows an architecture.
import { decode, get, post } from "./api.js";
import { showBackward, setupBackward } from "./backward.js";
import { showConv, showDense } from "./forward.js";
import { setupDrawing, setupTestPicker, setupUpload } from "./input.js";
import { renderOverview } from "./overview.js";
import { showFilters, showSaliency, setupJobs } from "./panels.js";
import { el, fmt, paintImage } from "./render.js";

const DEBOUNCE_MS = 120;

const state = {
  run: null, model: null, input: null, prediction: null, selected: null,
  api: (what) => `/api/runs/${encodeURIComponent(state.run)}/${what}`,
  fail: (e) => setStatus(e.message || String(e), true),
};
window.cnnlabExplore = state;  // for the console and the end-to-end tests

function setStatus(text, bad = false) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.className = bad ? "error" : "muted";
}

// Only the newest prediction is drawn: replies to older requests are dropped, and while one
// request is in flight, newer inputs wait (the last one wins).
let sequence = 0;
let busy = false;
let pending = null;
async function predict(input) {
  if (busy) { pending = input; return; }
  busy = true;
  const mine = ++sequence;
  document.body.dataset.busy = "1";
  try {
    const reply = await post(state.api("predict"), { input, encoding: "float32" });
    if (mine !== sequence) return;
    state.prediction = reply;
    state.input = { pixels: reply.input };  // later requests reuse the prepared pixels
    showPrediction();
    refreshDetails();
  } catch (e) {
    state.fail(e);
  } finally {
    busy = false;
    if (pending) { const next = pending; pending = null; predict(next); }
    else delete document.body.dataset.busy;
  }
}

// makeInput() runs once the input has been still for DEBOUNCE_MS (a drawing is encoded then).
let timer = null;
function predictSoon(makeInput) {
  document.body.dataset.busy = "1";  // a prediction is coming (tests wait on this)
  clearTimeout(timer);
  timer = setTimeout(() => predict(makeInput()), DEBOUNCE_MS);
}

function showPrediction() {
  const p = state.prediction;
  const list = document.getElementById("prediction");
  list.replaceChildren(...p.top.map((t) => {
    const bar = el("span", { class: "bar" });
    bar.style.width = `${Math.round(120 * t.probability)}px`;
    return el("li", { "data-test": "top", "data-class": String(t.index),
      "data-probability": String(t.probability) }, `${t.name} ${fmt(100 * t.probability, 1)}%`,
    bar);
  }));
  document.getElementById("prediction").dataset.top = String(p.top[0].index);
  document.getElementById("predict-time").textContent = `computed in ${fmt(p.time_ms, 1)} ms`;
  const image = decode(p.input);
  paintImage(document.getElementById("input-view"), image.data, image.shape);
  renderOverview(document.getElementById("overview"), state, selectUnit);
  setStatus("ready");
}

// After a new input: the open details follow it.
function refreshDetails() {
  showSaliency(state).catch(state.fail);
  if (state.selected) selectUnit(state.selected).catch(state.fail);
  if (document.querySelector("[data-test=bw-title]")) showBackward(state).catch(state.fail);
}

async function selectUnit(target) {
  if (!target) {
    setStatus("This layer's units are explained at the conv or dense layer before it.");
    return;
  }
  state.selected = target;
  document.getElementById("maximize-run").disabled = false;
  if (target.kind === "conv") await showConv(state, target);
  else await showDense(state, target);
}

async function loadRun(name) {
  state.run = name;
  state.selected = null;
  state.prediction = null;
  for (const id of ["forward-detail", "occlusion", "maximize", "overview", "prediction"]) {
    document.getElementById(id).replaceChildren();
  }
  state.model = await get(state.api("model"));
  const m = state.model;
  document.getElementById("model-info").textContent = `${m.model || "model"} on `
    + `${m.data || "?"}: input ${m.input_shape.join("×")}, ${m.layers.length} layers, `
    + `${m.class_names.length} classes`;
  document.getElementById("maximize-run").disabled = true;
  setupBackward(state);
  await Promise.all([picker.show(), showFilters(state)]);
  if (m.has_test_set) await pickTest(0);
  else setStatus("draw or upload an image");
}

async function pickTest(index) {
  const item = await get(state.api(`test/${index}`));
  document.getElementById("true-label").textContent = `test image #${item.index}: true label `
    + `${item.class_name}`;
  document.getElementById("true-label").dataset.label = String(item.label);
  await predict({ pixels: item.pixels });
}

const picker = setupTestPicker(state, (index) => pickTest(index).catch(state.fail));

async function start() {
  setupDrawing((snapshot) => {
    document.getElementById("true-label").textContent = "drawn by hand";
    predictSoon(() => ({ png: snapshot() }));
  }, () => {});
  setupUpload(state, async (prepared, filename) => {
    document.getElementById("true-label").textContent = `uploaded: ${filename}`;
    await predict({ pixels: prepared.pixels });
  });
  setupJobs(state);
  document.getElementById("scaling").addEventListener("change", () => {
    if (state.prediction) renderOverview(document.getElementById("overview"), state, selectUnit);
  });
  const runs = await get("/api/runs");
  const select = document.getElementById("run-select");
  select.replaceChildren(...runs.runs.map((r) => el("option", { value: r.name,
    text: r.name })));
  const names = runs.runs.map((r) => r.name);
  const asked = new URLSearchParams(location.search).get("run");
  const wanted = names.includes(asked) ? asked : runs.default || names[0];
  if (!wanted) { setStatus("no runs to show: train one with `cnnlab train`", true); return; }
  select.value = wanted;
  select.addEventListener("change", () => loadRun(select.value).catch(state.fail));
  await loadRun(wanted);
  document.body.dataset.ready = "1";
}

start().catch(state.fail);
