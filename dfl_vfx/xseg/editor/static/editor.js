// dfl-vfx XSeg label editor: draw include/exclude polygons on aligned faces and save them to the faceset.
// Plain JS, no libraries; every URL is relative to the page (which carries the session token in its path).
// Face coordinates: pixels of the aligned face, x right, y down, integer values at pixel centres.
"use strict";

const INCLUDE = 1;
const EXCLUDE = 0;
const CLOSE_RADIUS = 8; // canvas pixels: a click this close to the first point closes the polygon
const GRAB_RADIUS = 6; // canvas pixels: a press this close to a point drags it
const COLORS = {
  [INCLUDE]: { stroke: "#39d353", fill: "rgba(57, 211, 83, 0.18)" },
  [EXCLUDE]: { stroke: "#ff5a5a", fill: "rgba(255, 90, 90, 0.22)" },
};

const state = {
  faces: [], index: -1, size: 0, scale: 1, hasPrediction: false,
  polygons: [], current: null, mode: INCLUDE, undo: [], redo: [], dirty: false,
  overlay: true, image: null, prediction: null, matte: null, hover: null, lastPointer: null, drag: null,
  pressed: false, busy: false,
};

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const ctx = canvas.getContext("2d");

function setMessage(text, isError = false) {
  const box = $("message");
  box.textContent = text;
  box.classList.toggle("error", isError);
}

function setState(name) {
  document.body.dataset.state = name;
}

function faceUrl(name, view = "") {
  return "api/faces/" + encodeURIComponent(name) + (view ? "/" + view : "");
}

async function getJson(url, options) {
  const response = await fetch(url, options);
  let body = null;
  try {
    body = await response.json();
  } catch (err) {
    throw new Error(url + ": the server answered " + response.status + " without JSON");
  }
  if (!response.ok) throw new Error(body && body.error ? body.error : url + ": " + response.status);
  return body;
}

// A mask view: null when there is none (404); a refusal (a wrong model) is shown as the page's message.
async function loadMask(url) {
  const response = await fetch(url);
  if (response.status === 404) return null;
  if (!response.ok) {
    let text = url + ": " + response.status;
    try {
      text = (await response.json()).error || text;
    } catch (err) {
      // keep the status line
    }
    setMessage(text, true);
    return null;
  }
  const blobUrl = URL.createObjectURL(await response.blob());
  const img = await loadImage(blobUrl);
  URL.revokeObjectURL(blobUrl); // the image is decoded; tint() copies it
  return img;
}

function loadImage(url) {
  return new Promise((resolve) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => resolve(null);
    img.src = url;
  });
}

// A grey mask image as a coloured, half-transparent canvas.
function tint(img, rgb, opacity) {
  if (!img) return null;
  const off = document.createElement("canvas");
  off.width = img.width;
  off.height = img.height;
  const octx = off.getContext("2d");
  octx.drawImage(img, 0, 0);
  const data = octx.getImageData(0, 0, off.width, off.height);
  for (let i = 0; i < data.data.length; i += 4) {
    const value = data.data[i];
    data.data[i] = rgb[0];
    data.data[i + 1] = rgb[1];
    data.data[i + 2] = rgb[2];
    data.data[i + 3] = Math.round(value * opacity);
  }
  octx.putImageData(data, 0, 0);
  return off;
}

// ---- geometry -------------------------------------------------------------------------------------------

function toFace(event) {
  const rect = canvas.getBoundingClientRect();
  const cx = (event.clientX - rect.left) * (canvas.width / rect.width);
  const cy = (event.clientY - rect.top) * (canvas.height / rect.height);
  const round = (v) => Math.round(v * 100) / 100;
  return [round(cx / state.scale - 0.5), round(cy / state.scale - 0.5)];
}

function toCanvas(point) {
  return [(point[0] + 0.5) * state.scale, (point[1] + 0.5) * state.scale];
}

function canvasDistance(a, b) {
  const [ax, ay] = toCanvas(a);
  const [bx, by] = toCanvas(b);
  return Math.hypot(ax - bx, ay - by);
}

function inside(point, pts) {
  let hit = false;
  for (let i = 0, j = pts.length - 1; i < pts.length; j = i++) {
    const [xi, yi] = pts[i];
    const [xj, yj] = pts[j];
    if ((yi > point[1]) !== (yj > point[1]) && point[0] < ((xj - xi) * (point[1] - yi)) / (yj - yi) + xi) hit = !hit;
  }
  return hit;
}

function grabbedPoint(point) {
  for (let p = state.polygons.length - 1; p >= 0; p--) {
    const pts = state.polygons[p].pts;
    for (let i = 0; i < pts.length; i++) {
      if (canvasDistance(pts[i], point) <= GRAB_RADIUS) return { polygon: p, point: i };
    }
  }
  return null;
}

// ---- edits (every edit is undoable) ----------------------------------------------------------------------

function snapshot() {
  return JSON.stringify({ polygons: state.polygons, current: state.current });
}

function remember() {
  state.undo.push(snapshot());
  state.redo = [];
}

function changed() {
  state.dirty = true;
  showDirty();
  draw();
}

function restore(from, to) {
  if (!from.length) return;
  to.push(snapshot());
  const saved = JSON.parse(from.pop());
  state.polygons = saved.polygons;
  state.current = saved.current;
  changed();
}

function setMode(mode) {
  state.mode = mode;
  if (state.current && state.current.type !== mode) {
    remember();
    state.current.type = mode;
    changed();
  }
  $("include").classList.toggle("active", mode === INCLUDE);
  $("exclude").classList.toggle("active", mode === EXCLUDE);
  draw();
}

function addPoint(point) {
  remember();
  if (!state.current) {
    state.current = { type: state.mode, pts: [point] };
  } else if (state.current.pts.length >= 3 && canvasDistance(point, state.current.pts[0]) <= CLOSE_RADIUS) {
    state.undo.pop();
    finishPolygon();
    return;
  } else {
    state.current.pts.push(point);
  }
  changed();
}

function finishPolygon() {
  if (!state.current) return true;
  if (state.current.pts.length < 3) {
    setMessage("a polygon needs at least 3 points: add points, or Esc to drop it", true);
    return false;
  }
  remember();
  state.polygons.push(state.current);
  state.current = null;
  setMessage((state.polygons[state.polygons.length - 1].type === INCLUDE ? "include" : "exclude") +
    " polygon added (" + state.polygons.length + " on this face)");
  changed();
  return true;
}

function dropCurrent() {
  if (!state.current) return;
  remember();
  state.current = null;
  changed();
}

function removeLastPoint() {
  if (!state.current) return;
  remember();
  state.current.pts.pop();
  if (!state.current.pts.length) state.current = null;
  changed();
}

function removePolygonAt(point) {
  for (let p = state.polygons.length - 1; p >= 0; p--) {
    if (inside(point, state.polygons[p].pts)) {
      remember();
      state.polygons.splice(p, 1);
      changed();
      return;
    }
  }
}

// ---- drawing -------------------------------------------------------------------------------------------

function tracePolygon(pts, close) {
  ctx.beginPath();
  pts.forEach((pt, i) => {
    const [x, y] = toCanvas(pt);
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
  if (close) ctx.closePath();
}

function drawPoints(pts, color) {
  ctx.fillStyle = color;
  for (const pt of pts) {
    const [x, y] = toCanvas(pt);
    ctx.fillRect(x - 2.5, y - 2.5, 5, 5);
  }
}

function draw() {
  const side = state.size * state.scale;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!state.image) return;
  ctx.imageSmoothingEnabled = state.scale < 4;
  ctx.drawImage(state.image, 0, 0, side, side);
  if (state.matte && !state.polygons.length) ctx.drawImage(state.matte, 0, 0, side, side);
  if (state.overlay && state.prediction) ctx.drawImage(state.prediction, 0, 0, side, side);
  ctx.lineWidth = 1.5;
  for (const polygon of state.polygons) {
    const color = COLORS[polygon.type];
    tracePolygon(polygon.pts, true);
    ctx.fillStyle = color.fill;
    ctx.fill("evenodd");
    ctx.strokeStyle = color.stroke;
    ctx.stroke();
    drawPoints(polygon.pts, color.stroke);
  }
  if (state.current) {
    const color = COLORS[state.current.type];
    const pts = state.hover ? state.current.pts.concat([state.hover]) : state.current.pts;
    ctx.setLineDash([5, 4]);
    ctx.strokeStyle = color.stroke;
    tracePolygon(pts, false);
    ctx.stroke();
    ctx.setLineDash([]);
    drawPoints(state.current.pts, color.stroke);
    const [fx, fy] = toCanvas(state.current.pts[0]);
    ctx.strokeStyle = "#fff";
    ctx.strokeRect(fx - CLOSE_RADIUS / 2, fy - CLOSE_RADIUS / 2, CLOSE_RADIUS, CLOSE_RADIUS);
  }
}

function showDirty() {
  const label = $("dirty");
  label.textContent = state.dirty ? "unsaved" : "saved";
  label.classList.toggle("unsaved", state.dirty);
}

function layout() {
  if (!state.size) return;
  const stage = $("stage");
  const fit = Math.min(stage.clientWidth - 16, stage.clientHeight - 16) / state.size;
  state.scale = fit >= 1 ? Math.floor(fit) : Math.max(fit, 0.25);
  canvas.width = canvas.height = Math.round(state.size * state.scale);
  document.body.dataset.scale = String(state.scale);
  draw();
}

function showList() {
  const list = $("list");
  list.textContent = "";
  state.faces.forEach((face, i) => {
    const row = document.createElement("div");
    row.textContent = face.name + (face.polygons ? " (" + face.polygons + ")" : "");
    row.title = face.name;
    row.classList.toggle("current", i === state.index);
    row.classList.toggle("labelled", face.polygons > 0);
    row.classList.toggle("matte", !face.polygons && face.matte);
    row.addEventListener("click", () => go(i));
    list.appendChild(row);
  });
  const current = list.children[state.index];
  if (current) current.scrollIntoView({ block: "nearest" });
}

// ---- server ----------------------------------------------------------------------------------------------

async function save() {
  if (state.current) {
    setMessage("finish the polygon in progress (Enter) or drop it (Esc) before saving", true);
    return false;
  }
  const face = state.faces[state.index];
  setState("saving");
  try {
    const result = await getJson(faceUrl(face.name), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ polygons: state.polygons }),
    });
    face.polygons = result.polygons;
    state.dirty = false;
    showDirty();
    showList();
    setMessage("saved " + result.polygons + " polygon(s) of " + face.name);
    setState("saved");
    return true;
  } catch (err) {
    setMessage(err.message, true); // nothing is lost: the polygons stay on screen, unsaved
    setState("error");
    return false;
  }
}

async function go(index) {
  if (state.busy || index < 0 || index >= state.faces.length || index === state.index) return;
  if (state.index >= 0 && (state.dirty || state.current)) {
    if (!(await save())) return;
  }
  state.busy = true;
  setState("loading");
  const face = state.faces[index];
  setMessage("loading " + face.name);
  try {
    const data = await getJson(faceUrl(face.name));
    const [image, prediction, matte] = await Promise.all([
      loadImage(faceUrl(face.name, "image.png")),
      state.hasPrediction ? loadMask(faceUrl(face.name, "prediction.png")) : null,
      data.matte ? loadMask(faceUrl(face.name, "matte.png")) : null,
    ]);
    if (!image) throw new Error(face.name + ": the face image cannot be loaded");
    Object.assign(state, {
      index, size: data.size, image, polygons: data.polygons, current: null, undo: [], redo: [], dirty: false,
      prediction: tint(prediction, [255, 79, 216], 0.45), matte: tint(matte, [79, 179, 255], 0.35),
    });
    $("face-name").textContent = face.name;
    $("counter").textContent = index + 1 + " / " + state.faces.length;
    document.body.dataset.face = face.name;
    showDirty();
    showList();
    layout();
    if (!$("message").classList.contains("error")) {
      setMessage(data.polygons.length + " polygon(s)" + (data.matte ? ", imported matte" : "") +
        (state.hasPrediction && !prediction ? ", no prediction for this face" : ""));
    }
    setState("ready");
  } catch (err) {
    setMessage(err.message, true);
    setState("error");
  } finally {
    state.busy = false;
  }
}

// ---- input -----------------------------------------------------------------------------------------------

canvas.addEventListener("mousedown", (event) => {
  if (event.button !== 0 || !state.image) return;
  canvas.focus();
  state.pressed = true;
  const point = toFace(event);
  const grabbed = state.current ? null : grabbedPoint(point);
  if (grabbed) {
    remember();
    state.drag = grabbed;
  }
});

canvas.addEventListener("mousemove", (event) => {
  if (!state.image) return;
  const point = toFace(event);
  state.lastPointer = point;
  state.hover = state.current ? point : null;
  if (state.drag) {
    state.polygons[state.drag.polygon].pts[state.drag.point] = point;
    changed();
  } else if (state.current) {
    draw();
  }
});

canvas.addEventListener("mouseup", (event) => {
  if (event.button !== 0 || !state.image || !state.pressed) return; // a press that began elsewhere adds nothing
  state.pressed = false;
  if (state.drag) {
    state.drag = null;
    return;
  }
  addPoint(toFace(event));
});

canvas.addEventListener("mouseleave", () => {
  state.hover = null;
  state.pressed = false;
  state.drag = null;
  draw();
});

document.addEventListener("keydown", (event) => {
  const key = event.key.toLowerCase();
  const ctrl = event.ctrlKey || event.metaKey;
  let handled = true;
  if (ctrl && key === "z" && !event.shiftKey) restore(state.undo, state.redo);
  else if ((ctrl && key === "z" && event.shiftKey) || (ctrl && key === "y")) restore(state.redo, state.undo);
  else if (ctrl && key === "s") save();
  else if (ctrl || event.altKey) handled = false;
  else if (key === "q") setMode(INCLUDE);
  else if (key === "w") setMode(EXCLUDE);
  else if (key === "enter") finishPolygon();
  else if (key === "escape") dropCurrent();
  else if (key === "backspace") removeLastPoint();
  else if (key === "delete" && !state.current && state.lastPointer) removePolygonAt(state.lastPointer);
  else if (key === "arrowleft" || key === "a") go(state.index - 1);
  else if (key === "arrowright" || key === "d") go(state.index + 1);
  else if (key === "s") save();
  else if (key === "`" || key === "o") toggleOverlay();
  else handled = false;
  if (handled) event.preventDefault();
});

function toggleOverlay() {
  state.overlay = !state.overlay;
  $("overlay").classList.toggle("active", state.overlay);
  setMessage(state.hasPrediction ? "prediction " + (state.overlay ? "shown" : "hidden")
    : "no prediction: start the editor with --model, or apply a model (dfl-vfx xseg apply)");
  draw();
}

$("include").addEventListener("click", () => setMode(INCLUDE));
$("exclude").addEventListener("click", () => setMode(EXCLUDE));
$("undo").addEventListener("click", () => restore(state.undo, state.redo));
$("redo").addEventListener("click", () => restore(state.redo, state.undo));
$("overlay").addEventListener("click", toggleOverlay);
$("prev").addEventListener("click", () => go(state.index - 1));
$("next").addEventListener("click", () => go(state.index + 1));
$("save").addEventListener("click", save);
window.addEventListener("resize", layout);
window.addEventListener("beforeunload", (event) => {
  if (state.dirty || state.current) event.preventDefault();
});

async function start() {
  try {
    const data = await getJson("api/faces");
    state.faces = data.faces;
    state.hasPrediction = data.prediction;
    $("overlay").classList.toggle("active", state.overlay && state.hasPrediction);
    $("overlay").disabled = !state.hasPrediction;
    document.title = "XSeg labels: " + data.faceset;
    setMode(INCLUDE);
    await go(0);
  } catch (err) {
    setMessage(err.message, true);
    setState("error");
  }
}

start();
