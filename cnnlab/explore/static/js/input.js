// The three inputs: a drawing canvas (mouse, pen or finger), the run's test set, an upload.
import { decode, get, postBytes } from "./api.js";
import { el, paintImage } from "./render.js";

const PAGE = 24;

// Drawing: white strokes on black, like the digits. onStroke(snapshot) after each change,
// where snapshot() gives the canvas as a PNG data URL: the caller debounces and encodes only
// what it sends. Pointer events cover mouse, pen and touch alike.
export function setupDrawing(onStroke, onClear) {
  const canvas = document.getElementById("draw-canvas");
  const ctx = canvas.getContext("2d");
  const brush = document.getElementById("brush");
  const clear = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height); };
  clear();
  const snapshot = () => canvas.toDataURL("image/png");
  let last = null;
  const point = (event) => {
    const r = canvas.getBoundingClientRect();
    return [(event.clientX - r.left) * canvas.width / r.width,
      (event.clientY - r.top) * canvas.height / r.height];
  };
  const line = (from, to) => {
    ctx.strokeStyle = "#fff"; ctx.fillStyle = "#fff";
    ctx.lineWidth = Number(brush.value); ctx.lineCap = "round"; ctx.lineJoin = "round";
    ctx.beginPath(); ctx.moveTo(...from); ctx.lineTo(...to); ctx.stroke();
  };
  const dot = (at) => {  // a tap: a zero-length line may draw nothing
    ctx.fillStyle = "#fff";
    ctx.beginPath(); ctx.arc(...at, Number(brush.value) / 2, 0, 2 * Math.PI); ctx.fill();
  };
  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    last = point(event);
    dot(last);
    onStroke(snapshot);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!last) return;
    const p = point(event);
    line(last, p);
    last = p;
    onStroke(snapshot);
  });
  const end = () => { last = null; };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  document.getElementById("clear-canvas").addEventListener("click", () => {
    clear();
    onClear();
  });
  return { clear };
}

// The test-set strip: PAGE thumbnails, paged; onPick(index, item) when one is clicked.
export function setupTestPicker(state, onPick) {
  const thumbs = document.getElementById("test-thumbs");
  const range = document.getElementById("test-range");
  let offset = 0;
  async function show() {
    thumbs.replaceChildren();
    if (!state.model.has_test_set) {
      range.textContent = state.model.test_problem || "no test set for this run";
      return;
    }
    const page = await get(`/api/runs/${encodeURIComponent(state.run)}/test?offset=${offset}`
      + `&count=${PAGE}`);
    range.textContent = `${offset}–${offset + page.items.length - 1} of ${page.total}`;
    for (const item of page.items) {
      const image = decode(item.image);
      const f = new Float32Array(image.data.length);
      for (let i = 0; i < f.length; i++) f[i] = image.data[i] / 255;
      const canvas = paintImage(el("canvas"), f, image.shape);
      canvas.dataset.test = "test-thumb";
      canvas.dataset.index = String(item.index);
      canvas.title = `#${item.index}: ${item.class_name}`;
      canvas.addEventListener("click", () => {
        thumbs.querySelectorAll("canvas").forEach((c) => c.classList.remove("selected"));
        canvas.classList.add("selected");
        onPick(item.index, item);
      });
      thumbs.append(canvas);
    }
  }
  document.getElementById("test-prev").addEventListener("click", () => {
    offset = Math.max(0, offset - PAGE); show().catch(state.fail);
  });
  document.getElementById("test-next").addEventListener("click", () => {
    if (offset + PAGE < (state.model.test_count || 0)) offset += PAGE;
    show().catch(state.fail);
  });
  return { show: () => { offset = 0; return show(); } };
}

// Upload: the file's bytes go to /prepare (validated, size-limited and preprocessed there as
// `cnnlab predict` does); a refusal is shown and the page carries on with its current input.
export function setupUpload(state, onPrepared) {
  const input = document.getElementById("upload");
  const error = document.getElementById("upload-error");
  input.addEventListener("change", async () => {
    const file = input.files && input.files[0];
    if (!file) return;
    error.hidden = true;
    try {
      const bytes = await file.arrayBuffer();
      const prepared = await postBytes(
        `/api/runs/${encodeURIComponent(state.run)}/prepare`, bytes);
      await onPrepared(prepared, file.name);
    } catch (e) {
      error.textContent = `${file.name}: ${e.message}`;
      error.hidden = false;
    } finally {
      input.value = "";
    }
  });
}
