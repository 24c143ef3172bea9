// cryocube view: the visible faces of a sub-cube as a 3-D box, in plain WebGL2.
//
// Each of the six faces of the box shows the slice of the variable at the face's side of the
// selected sub-cube; only the (at most three) faces turned to the camera are fetched and drawn.
// Faces arrive 16-bit quantised and thinned to the screen size; the shader maps them through a
// 256-entry colormap. Hover and profiles ask the server for exact stored values. The whole view
// state lives in the URL hash, so a link reopens the same view.

import { COLORMAPS } from "/colormaps.js";
import { niceTicks, timeTicks, formatTick, indexOf } from "/ticks.js";
import { LEGEND_WIDTH, drawLegend } from "/legend.js";
import { recordWebm } from "/webm.js";

const $ = (id) => document.getElementById(id);
const NAN_CODE = 65535;
// NaN colours: magenta is in none of the colormaps; the background suits sparse layers (a
// lake mask over a continent) where magenta would cover the screen.
const NAN_RGBA = { magenta: [1.0, 0.0, 1.0, 1.0], background: [0.086, 0.094, 0.11, 1.0] };

let meta = null;
let gl = null;
let prog = null;
let lutTex = null;
let lutRgba = new Uint8Array(256 * 4);
const faces = new Map(); // "var|axis|index|max" -> {tex, rows, cols, step, min, max, sample}
const pending = new Map();
let state = null;
let frames = 0;

// ---------- state <-> URL ----------
function defaultState(v) {
  return {
    var: v.name,
    lo: [0, 0, 0],
    hi: v.shape.slice(),
    // A map faces the camera; a volume is turned to show three faces.
    yaw: v.flat ? 0 : -0.6, pitch: v.flat ? 0 : 0.45, zoom: v.flat ? 1.3 : 1.0, panX: 0, panY: 0,
    proj: "persp", cmap: "viridis", reverse: false,
    auto: true, vmin: null, vmax: null, log: false, sym: false, nan: "auto", paxis: 2, grid: false, follow: false,
    ...colourBar(v),
  };
}

// The colour bar the cube's author gave the variable (color_bar_name, color_value_min/max),
// when this page has that colormap: it and its range replace the defaults.
function colourBar(v) {
  const c = v.colour_bar;
  if (!c) return {};
  const base = c.name.endsWith("_r") ? c.name.slice(0, -2) : null;
  const map = COLORMAPS[c.name] ? { cmap: c.name, reverse: false }
    : base && COLORMAPS[base] ? { cmap: base, reverse: true } : {};
  const fixed = c.min != null && c.max != null && c.max > c.min;
  return { ...map, ...(fixed ? { auto: false, vmin: c.min, vmax: c.max } : {}) };
}

function readHash() {
  try {
    const s = JSON.parse(decodeURIComponent(location.hash.slice(1)));
    return typeof s === "object" && s ? s : null;
  } catch { return null; }
}

// Debounced: browsers throttle history.replaceState (a slider dragged for a few seconds makes
// hundreds of frames), and only the view the user stops at matters.
let hashTimer = null;
function writeHash() {
  clearTimeout(hashTimer);
  hashTimer = setTimeout(() => history.replaceState(null, "", "#" + encodeURIComponent(JSON.stringify(state))), 200);
}

function variable() { return meta.variables.find((v) => v.name === state.var); }
function axisOf(d) { const name = variable().dims[d]; return meta.axes.find((a) => a.name === name); }

// ---------- labels ----------
function coordLabel(d, i) {
  const a = axisOf(d);
  if (a.labels) return a.labels[i];
  const v = a.values[i];
  // Whole numbers in full (polar x/y in metres: "-1956000", not "-1.956e+6", which hides the
  // 100 m step); other large ones to two decimals; tiny ones in exponent form.
  const t = Number.isInteger(v) ? String(v)
    : Math.abs(v) >= 1e5 ? String(+v.toFixed(2))
      : Math.abs(v) < 1e-3 && v !== 0 ? v.toExponential(3) : String(+v.toPrecision(6));
  return a.units && a.units !== "index" ? `${t} ${a.units}` : `${t}`;
}

// ---------- WebGL ----------
const VS = `#version 300 es
in vec3 a_pos; in vec2 a_t;
uniform mat4 u_mvp;
out vec2 v_t;
void main() { v_t = a_t; gl_Position = u_mvp * vec4(a_pos, 1.0); }`;

const FS = `#version 300 es
precision highp float; precision highp usampler2D;
uniform usampler2D u_data; uniform sampler2D u_lut;
uniform vec2 u_rb; uniform vec2 u_rc; uniform vec2 u_step; uniform vec2 u_origin; uniform vec2 u_size;
uniform float u_fmin; uniform float u_fmax; uniform float u_vmin; uniform float u_vmax;
uniform int u_log; uniform vec4 u_nan;
in vec2 v_t; out vec4 o;
void main() {
  float ib = min(u_rb.x + v_t.x * (u_rb.y - u_rb.x), u_rb.y - 0.5);
  float ic = min(u_rc.x + v_t.y * (u_rc.y - u_rc.x), u_rc.y - 0.5);
  ivec2 texel = ivec2(min(floor((ic - u_origin.y) / u_step.y), u_size.x - 1.0), min(floor((ib - u_origin.x) / u_step.x), u_size.y - 1.0));
  uint q = texelFetch(u_data, texel, 0).r;
  if (q == 65535u) { o = u_nan; return; }
  float v = u_fmin + float(q) / 65534.0 * (u_fmax - u_fmin);
  float t = u_log == 1
    ? (log(max(v, 1e-30)) - log(u_vmin)) / (log(u_vmax) - log(u_vmin))
    : (v - u_vmin) / (u_vmax - u_vmin);
  if (!(u_vmax > u_vmin)) t = 0.5;
  t = clamp(t, 0.0, 1.0);
  o = texture(u_lut, vec2(t * 255.0 / 256.0 + 0.5 / 256.0, 0.5));
}`;

function compile(type, src) {
  const s = gl.createShader(type);
  gl.shaderSource(s, src);
  gl.compileShader(s);
  if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s));
  return s;
}

function initGL() {
  gl = $("gl").getContext("webgl2", { antialias: false });
  if (!gl) throw new Error("this browser has no WebGL2");
  prog = gl.createProgram();
  gl.attachShader(prog, compile(gl.VERTEX_SHADER, VS));
  gl.attachShader(prog, compile(gl.FRAGMENT_SHADER, FS));
  gl.linkProgram(prog);
  if (!gl.getProgramParameter(prog, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(prog));
  lutTex = gl.createTexture();
}

function setLut() {
  const hex = COLORMAPS[state.cmap] || COLORMAPS.viridis;
  const rgba = new Uint8Array(256 * 4);
  for (let i = 0; i < 256; i++) {
    const j = state.reverse ? 255 - i : i;
    for (let c = 0; c < 3; c++) rgba[i * 4 + c] = parseInt(hex.substr(j * 6 + c * 2, 2), 16);
    rgba[i * 4 + 3] = 255;
  }
  lutRgba = rgba;
  gl.bindTexture(gl.TEXTURE_2D, lutTex);
  gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
  gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA8, 256, 1, 0, gl.RGBA, gl.UNSIGNED_BYTE, rgba);
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.LINEAR);
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
}

// ---------- geometry ----------
// Position p in the selected sub-cube (p[d] in 0..1 along dimension d) to world: dim 2 -> x,
// dim 1 -> -y, dim 0 -> z. The selection fills the box, so narrowing ranges zooms in (as in
// Lexcube). A volume is a unit cube (its dimensions have different units); a 2-D map is a thin
// slab with the aspect ratio of the selected cells (along y and x).
function extent() {
  const v = variable();
  if (!v.flat) return [1, 1, 1];
  const ny = state.hi[1] - state.lo[1], nx = state.hi[2] - state.lo[2];
  const m = Math.max(ny, nx);
  return [0.02, ny / m, nx / m];
}
function world(p) {
  const e = extent();
  return [(p[2] - 0.5) * e[2], (0.5 - p[1]) * e[1], (p[0] - 0.5) * e[0]];
}
// The dimensions the user moves through: a map's added one-cell dimension is not one.
function shownDims() { return variable().flat ? [1, 2] : [0, 1, 2]; }

function mat4Mul(a, b) {
  const o = new Float32Array(16);
  for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) {
    let s = 0;
    for (let k = 0; k < 4; k++) s += a[k * 4 + j] * b[i * 4 + k];
    o[i * 4 + j] = s;
  }
  return o;
}

function viewMatrices() {
  const c = $("gl");
  const aspect = c.width / Math.max(1, c.height);
  const dist = 3.0 / state.zoom;
  const cy = Math.cos(state.yaw), sy = Math.sin(state.yaw), cp = Math.cos(state.pitch), sp = Math.sin(state.pitch);
  const ry = new Float32Array([cy, 0, -sy, 0, 0, 1, 0, 0, sy, 0, cy, 0, 0, 0, 0, 1]);
  const rx = new Float32Array([1, 0, 0, 0, 0, cp, sp, 0, 0, -sp, cp, 0, 0, 0, 0, 1]);
  const t = new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, state.panX || 0, state.panY || 0, -dist, 1]);
  const view = mat4Mul(t, mat4Mul(rx, ry));
  let proj;
  if (state.proj === "ortho") {
    const h = 1.15 / state.zoom, w = h * aspect;
    proj = new Float32Array([1 / w, 0, 0, 0, 0, 1 / h, 0, 0, 0, 0, -2 / 20, 0, 0, 0, -(20 + 0.01) / 20, 1]);
  } else {
    const f = 1 / Math.tan((35 * Math.PI) / 360), n = 0.05, fa = 50;
    proj = new Float32Array([f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (fa + n) / (n - fa), -1, 0, 0, (2 * fa * n) / (n - fa), 0]);
  }
  // The box is centred in the part of the stage the legend leaves free: a shift in clip space.
  const shift = new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, -LEGEND_WIDTH / Math.max(1, c.clientWidth), 0, 0, 1]);
  return { mvp: mat4Mul(shift, mat4Mul(proj, view)), view, proj, dist };
}

// The eye in world space: view = T(pan, -dist) Rx Ry, so eye = Ry^T Rx^T (-panX, -panY, dist);
// with `direction`, the unit vector from the scene towards the eye instead.
function cameraWorld(direction = false) {
  const dist = 3.0 / state.zoom;
  const cy = Math.cos(state.yaw), sy = Math.sin(state.yaw), cp = Math.cos(state.pitch), sp = Math.sin(state.pitch);
  const e = direction ? [0, 0, 1] : [-(state.panX || 0), -(state.panY || 0), dist];
  const r = [e[0], cp * e[1] + sp * e[2], -sp * e[1] + cp * e[2]];
  return [cy * r[0] - sy * r[2], r[1], sy * r[0] + cy * r[2]];
}

// The six faces: fixed axis a, side 0 (lo) or 1 (hi).
function faceList() {
  const v = variable();
  const out = [];
  for (let a = 0; a < 3; a++) for (const side of [0, 1]) {
    const [b, c] = [0, 1, 2].filter((d) => d !== a);
    const index = side === 0 ? state.lo[a] : state.hi[a] - 1;
    // Corners in cube space: a fixed, b and c spanning 0..1.
    const corner = (tb, tc) => { const p = [0, 0, 0]; p[a] = side; p[b] = tb; p[c] = tc; return p; };
    const normal = [0, 0, 0]; normal[a] = side === 0 ? -1 : 1;
    const nw = [normal[2], -normal[1], normal[0]];
    out.push({ a, b, c, side, index, corner, nw, n: v.shape });
  }
  return out;
}

// World position of the point (tb, tc) (each 0..1) of a face of the selected sub-cube.
function facePoint(f, tb, tc) {
  return world(f.corner(tb, tc));
}

function visibleFaces() {
  const cam = cameraWorld();
  return faceList().filter((f) => {
    const centre = facePoint(f, 0.5, 0.5);
    const d = [cam[0] - centre[0], cam[1] - centre[1], cam[2] - centre[2]];
    if (state.proj === "ortho") {
      // Parallel rays along the view direction: the camera's direction alone decides.
      const dir = cameraWorld(true);
      return f.nw[0] * dir[0] + f.nw[1] * dir[1] + f.nw[2] * dir[2] > 1e-9;
    }
    return f.nw[0] * d[0] + f.nw[1] * d[1] + f.nw[2] * d[2] > 1e-9;
  });
}

// Cells a face needs along its longer side: the longest on-screen edge of the box in device
// pixels, rounded up to a power of two so that rotating does not refetch faces at every step.
function screenMax() {
  const { mvp } = viewMatrices();
  const dpr = window.devicePixelRatio || 1;
  const corner = (i) => world([0, 1, 2].map((d) => (i >> d) & 1));
  let longest = 1;
  for (let i = 0; i < 8; i++) for (let d = 0; d < 3; d++) {
    if ((i >> d) & 1) continue;
    const a = project(mvp, corner(i)), b = project(mvp, corner(i | (1 << d)));
    longest = Math.max(longest, Math.hypot(a[0] - b[0], a[1] - b[1]) * dpr);
  }
  return Math.min(4096, Math.max(64, 2 ** Math.ceil(Math.log2(longest))));
}

// The part of a face's slice to fetch along dimension d: the selected range, widened to a
// grid of an eighth of it (a power of two), so that small slider moves reuse the face. The
// screen's cells go to this window: narrowing the ranges zooms in to the stored resolution.
// Over half the dimension, the whole of it: the face is then as sharp within a factor of two
// (the factor the screen size is rounded up by), and moving a face through the cube reuses
// the faces of the other two axes, read from the pyramid level the whole slice needs.
function faceWindow(d) {
  const lo = state.lo[d], hi = state.hi[d], n = variable().shape[d];
  if (2 * (hi - lo) > n) return [0, n];
  const g = 2 ** Math.floor(Math.log2(Math.max(1, (hi - lo) / 8)));
  return [Math.floor(lo / g) * g, Math.min(n, Math.ceil(hi / g) * g)];
}

function faceKey(f) { return `${state.var}|${f.a}|${f.index}|${screenMax()}|${faceWindow(f.b)}|${faceWindow(f.c)}`; }

async function loadFace(f) {
  const key = faceKey(f);
  if (faces.has(key)) return faces.get(key);
  if (pending.has(key)) return pending.get(key);
  const p = (async () => {
    const [r0, r1] = faceWindow(f.b), [c0, c1] = faceWindow(f.c);
    const url = `/api/face?var=${encodeURIComponent(state.var)}&axis=${f.a}&index=${f.index}&max=${screenMax()}&r0=${r0}&r1=${r1}&c0=${c0}&c1=${c1}`;
    const r = await fetch(url);
    if (!r.ok) throw new Error(`${url}: ${r.status} ${await r.text()}`);
    const h = (k) => r.headers.get(k);
    const data = new Uint16Array(await r.arrayBuffer());
    // The texture is made when the face is first drawn: the first faces are asked for
    // before WebGL has started.
    const face = {
      rows: +h("x-face-rows"), cols: +h("x-face-cols"), stepR: +h("x-face-step-rows"), stepC: +h("x-face-step-cols"),
      originR: +h("x-face-origin-rows"), originC: +h("x-face-origin-cols"),
      min: parseFloat(h("x-face-min")), max: parseFloat(h("x-face-max")), level: +h("x-face-level"), data, tex: null,
    };
    faces.set(key, face);
    pending.delete(key);
    // Bounded memory in the page too: keep the faces of the last few views only.
    // A face of the picture on screen is never evicted: PNG export and the next frame draw
    // it again, and a deleted texture there is a WebGL error (quick slider steps did that).
    if (faces.size > 48) {
      const inUse = new Set(lastLoaded.map((x) => x.face));
      const oldest = [...faces.keys()].find((k) => !inUse.has(faces.get(k)));
      if (oldest !== undefined) {
        const old = faces.get(oldest);
        // A draw still waiting for its other faces may hold it: without a texture, it is
        // uploaded again there rather than bound deleted.
        if (old.tex) gl.deleteTexture(old.tex);
        old.tex = null;
        faces.delete(oldest);
      }
    }
    return face;
  })();
  pending.set(key, p);
  return p;
}

// What the visible parts of the faces hold (a regular sample of about 80 x 80 cells per
// face): the automatic range, whether any value is positive, the share of cells with a
// value, and the classes when every value is a whole number and there are at most ten.
function sampleFaces(list) {
  const vals = [];
  let cells = 0;
  for (const { f, face } of list) {
    const span = face.max - face.min;
    const r0 = Math.floor((state.lo[f.b] - face.originR) / face.stepR), r1 = Math.ceil((state.hi[f.b] - face.originR) / face.stepR);
    const c0 = Math.floor((state.lo[f.c] - face.originC) / face.stepC), c1 = Math.ceil((state.hi[f.c] - face.originC) / face.stepC);
    const rs = Math.max(1, Math.floor((r1 - r0) / 80)), cs = Math.max(1, Math.floor((c1 - c0) / 80));
    for (let r = Math.max(0, r0); r < Math.min(r1, face.rows); r += rs) for (let c = Math.max(0, c0); c < Math.min(c1, face.cols); c += cs) {
      const q = face.data[r * face.cols + c];
      cells++;
      if (q !== NAN_CODE) vals.push(face.min + (q / 65534) * span);
    }
  }
  const out = { lo: 0, hi: 1, positive: false, valid: cells ? vals.length / cells : 0, classes: null };
  if (!vals.length) return out;
  vals.sort((x, y) => x - y);
  const at = (p) => vals[Math.min(vals.length - 1, Math.floor(p * (vals.length - 1)))];
  let lo = at(0.02), hi = at(0.98);
  if (state.log) {
    const pos = vals.filter((x) => x > 0);
    if (pos.length) { lo = pos[Math.floor(0.02 * (pos.length - 1))]; hi = pos[Math.floor(0.98 * (pos.length - 1))]; }
  }
  // One value (a mask of ones): a range of width 1 around it, so the value gets the middle
  // colour of the map, never its darkest end on a dark background.
  if (!(hi > lo)) { lo -= 0.5; hi = lo + 1; }
  // Codes are 1/65534 of a face's span apart: a whole number comes back within that.
  const whole = vals.every((x) => Math.abs(x - Math.round(x)) < 1e-4 * Math.max(1, Math.abs(x)));
  if (whole) {
    const distinct = [...new Set(vals.map(Math.round))];
    if (distinct.length <= 10) out.classes = distinct;
  }
  Object.assign(out, { lo, hi, positive: vals[vals.length - 1] > 0 });
  return out;
}

// The classes a variable is drawn with: its CF flags, else the whole numbers seen (at most
// ten) of an integer array or of any array holding only whole numbers.
function categories(v, sample) {
  if (v.flags && v.flags.length) return v.flags.map(([value, label]) => ({ value, label: `${formatTick(value, 1)} ${label}` }));
  if (!sample.classes) return null;
  return sample.classes.map((value) => ({ value, label: formatTick(value, 1) }));
}

// The NaN colour in use: "auto" is the background for sparse layers (under 5 % valid: a lake
// mask over a continent), where magenta would cover the screen, else magenta.
function nanColour() {
  if (state.nan !== "auto") return state.nan;
  return sparse ? "background" : "magenta";
}
let sparse = false;
let nanInView = false;
let firstValid = 1;
let legendCats = null;
let legendGeometry = null;

// A logarithmic scale needs positive values: without any, the option is off and says why
// (dB values are logarithms already).
function checkLog(positive) {
  $("log").disabled = !positive;
  $("logwhy").textContent = positive ? "" : legendCats ? " (classes)" : state.sym ? " (symmetric about 0)" : " (needs positive values)";
  if (!positive) { state.log = false; $("log").checked = false; }
}

let drawToken = 0;
async function draw() {
  const token = ++drawToken;
  clearHover();
  resize();
  const list = visibleFaces();
  const t0 = performance.now();
  let loaded;
  try {
    loaded = await Promise.all(list.map(async (f) => ({ f, face: await loadFace(f) })));
  } catch (e) {
    $("status").textContent = String(e.message || e);
    return;
  }
  if (token !== drawToken) return; // a newer view superseded this one
  const tFetched = performance.now();
  const sample = sampleFaces(loaded);
  const v = variable();
  sparse = v.valid_fraction != null ? v.valid_fraction < 0.05 : sample.valid < 0.05;
  if (frames === 0) firstValid = sample.valid;
  legendCats = categories(v, sample);
  nanInView = sample.valid < 1;
  if (state.auto) {
    let { lo, hi } = sample;
    if (legendCats) {
      // Each class its own colour, none at the map's ends: half a step beyond the extremes.
      const cv = legendCats.map((c) => c.value);
      [lo, hi] = [Math.min(...cv) - 0.5, Math.max(...cv) + 0.5];
    }
    if (state.sym) { const m = Math.max(Math.abs(lo), Math.abs(hi)); [lo, hi] = [-m, m]; }
    [state.vmin, state.vmax] = [lo, hi];
    $("vmin").value = +state.vmin.toPrecision(6);
    $("vmax").value = +state.vmax.toPrecision(6);
    checkLog(sample.positive && !legendCats && !state.sym);
  } else checkLog(state.vmax > 0 && state.vmin > 0 && !legendCats);
  render(loaded);
  const tDrawn = performance.now();
  drawLabels(viewMatrices().mvp);
  drawProfile();
  frames++;
  const ms = performance.now() - t0;
  window.cryocube = { frames, at: performance.now(), lastFrameMs: ms, state: JSON.parse(JSON.stringify(state)), faces: list.length, levels: loaded.map(({ face }) => face.level),
    parts: { fetch: tFetched - t0, gl: tDrawn - tFetched, labels: performance.now() - tDrawn } };
  document.body.dataset.frames = String(frames);
  // Timings are for scripts (window.cryocube), not the picture.
  $("status").textContent = "";
  writeHash();
}

let lastLoaded = [];

// The view as a PNG, with its labels and grid lines. Without preserveDrawingBuffer (which
// costs a copy per frame) the canvas is only readable in the task that drew it: draw again,
// then copy.
function pngDataUrl() {
  render(lastLoaded);
  const glc = $("gl");
  const out = document.createElement("canvas");
  out.width = glc.width; out.height = glc.height;
  const ctx = out.getContext("2d");
  ctx.drawImage(glc, 0, 0);
  ctx.drawImage($("labels"), 0, 0, out.width, out.height);
  return out.toDataURL("image/png");
}

// Draws the loaded faces now (synchronously: PNG export reads the canvas right after).
function render(loaded) {
  lastLoaded = loaded;
  const { mvp } = viewMatrices();
  gl.viewport(0, 0, gl.canvas.width, gl.canvas.height);
  gl.clearColor(0.086, 0.094, 0.11, 1);
  gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
  gl.enable(gl.DEPTH_TEST);
  gl.useProgram(prog);
  const u = (n) => gl.getUniformLocation(prog, n);
  gl.uniformMatrix4fv(u("u_mvp"), false, mvp);
  gl.uniform1f(u("u_vmin"), state.vmin);
  gl.uniform1f(u("u_vmax"), state.vmax);
  gl.uniform1i(u("u_log"), state.log ? 1 : 0);
  gl.uniform4fv(u("u_nan"), NAN_RGBA[nanColour()]);
  gl.activeTexture(gl.TEXTURE1);
  gl.bindTexture(gl.TEXTURE_2D, lutTex);
  gl.uniform1i(u("u_lut"), 1);
  for (const { f, face } of loaded) {
    const p = (tb, tc) => facePoint(f, tb, tc);
    const verts = new Float32Array([
      ...p(0, 0), 0, 0, ...p(1, 0), 1, 0, ...p(0, 1), 0, 1,
      ...p(0, 1), 0, 1, ...p(1, 0), 1, 0, ...p(1, 1), 1, 1,
    ]);
    const buf = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, buf);
    gl.bufferData(gl.ARRAY_BUFFER, verts, gl.STREAM_DRAW);
    const ap = gl.getAttribLocation(prog, "a_pos"), at = gl.getAttribLocation(prog, "a_t");
    gl.enableVertexAttribArray(ap);
    gl.vertexAttribPointer(ap, 3, gl.FLOAT, false, 20, 0);
    gl.enableVertexAttribArray(at);
    gl.vertexAttribPointer(at, 2, gl.FLOAT, false, 20, 12);
    gl.activeTexture(gl.TEXTURE0);
    if (!face.tex) {
      face.tex = gl.createTexture();
      gl.bindTexture(gl.TEXTURE_2D, face.tex);
      gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
      gl.texImage2D(gl.TEXTURE_2D, 0, gl.R16UI, face.cols, face.rows, 0, gl.RED_INTEGER, gl.UNSIGNED_SHORT, face.data);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.NEAREST);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.NEAREST);
    }
    gl.bindTexture(gl.TEXTURE_2D, face.tex);
    gl.uniform1i(u("u_data"), 0);
    gl.uniform2f(u("u_rb"), state.lo[f.b], state.hi[f.b]);
    gl.uniform2f(u("u_rc"), state.lo[f.c], state.hi[f.c]);
    gl.uniform2f(u("u_step"), face.stepR, face.stepC);
    gl.uniform2f(u("u_origin"), face.originR, face.originC);
    gl.uniform2f(u("u_size"), face.cols, face.rows);
    gl.uniform1f(u("u_fmin"), isFinite(face.min) ? face.min : 0);
    gl.uniform1f(u("u_fmax"), isFinite(face.max) ? face.max : 0);
    gl.drawArrays(gl.TRIANGLES, 0, 6);
    gl.deleteBuffer(buf);
  }
}

function project(mvp, w) {
  const c = $("gl");
  const x = mvp[0] * w[0] + mvp[4] * w[1] + mvp[8] * w[2] + mvp[12];
  const y = mvp[1] * w[0] + mvp[5] * w[1] + mvp[9] * w[2] + mvp[13];
  const ww = mvp[3] * w[0] + mvp[7] * w[1] + mvp[11] * w[2] + mvp[15];
  return [((x / ww + 1) / 2) * c.clientWidth, ((1 - y / ww) / 2) * c.clientHeight];
}

// Metres shown as km: projected x/y of a map, or any axis in metres longer than 20 km.
function kmAxis(a) {
  if (a.units !== "m" || a.values.length < 2) return false;
  const span = Math.abs(a.values[a.values.length - 1] - a.values[0]);
  return ((a.name === "x" || a.name === "y") && span >= 2000) || span >= 20000;
}

// An axis's title: its name and the unit its tick labels are in.
function axisTitle(a) {
  if (a.seconds) return `${a.name} (UTC)`;
  if (kmAxis(a)) return `${a.name} (km)`;
  return a.units && a.units !== "index" && !a.labels ? `${a.name} (${a.units})` : a.name;
}

// Ticks along dimension d at round coordinate values (1-2-5 steps; round UTC times; km for
// long metre axes), at most about `most` intervals over the selected range, each with where
// it sits in 0..1 along the sub-cube (cell centres hold the coordinate values).
function ticks(d, most = 5) {
  const a = axisOf(d);
  const lo = state.lo[d], hi = state.hi[d], n = hi - lo;
  const at = (idx) => (idx - lo + 0.5) / n;
  const inside = (t) => t >= -1e-9 && t <= 1 + 1e-9;
  if (n === 1 || (!a.seconds && a.labels)) {
    // One cell (or labels without numbers): its own label in the middle.
    return n === 1 ? [{ t: 0.5, label: coordLabel(d, lo), i: lo }] : [];
  }
  if (a.seconds) {
    const s = a.seconds;
    return timeTicks(s[lo], s[hi - 1], most)
      .map((k) => ({ t: at(indexOf(s, k.value)), label: k.label }))
      .filter((k) => inside(k.t));
  }
  const k = kmAxis(a) ? 1000 : 1;
  const vals = a.values;
  const { step, values } = niceTicks(vals[lo] / k, vals[hi - 1] / k, most);
  return values
    .map((x) => ({ t: at(indexOf(vals, x * k)), label: formatTick(x, step) }))
    .filter((x) => inside(x.t));
}

// ---------- overlays ----------
// Outlines from vector files (`view --overlay`, or a recipe cube's own vector sources), in
// the cube's projected x/y: drawn over the y/x faces of a map, on the label canvas so that
// exports carry them. Each can be switched off (state.hide holds the names off).
let overlays = [];
const OVERLAY_COLOURS = ["#ffffff", "#ffb000", "#00e0ff", "#ff4df0", "#7cff4d", "#ff6060"];

async function loadOverlays() {
  const r = await fetch("/api/overlays");
  if (!r.ok) return;
  overlays = (await r.json()).overlays.map((o, n) => ({ ...o, colour: OVERLAY_COLOURS[n % OVERLAY_COLOURS.length] }));
  $("overlays").hidden = !overlays.length;
  $("overlaylist").innerHTML = overlays.map((o, n) => `<label><input type="checkbox" data-n="${n}" checked><span class="key" style="background:${o.colour}"></span>${o.name} <small>(${o.paths.length} lines)</small></label>`).join("");
  $("overlaylist").querySelectorAll("input").forEach((el) => {
    el.checked = !(state.hide || []).includes(overlays[+el.dataset.n].name);
    el.addEventListener("change", () => {
      const name = overlays[+el.dataset.n].name;
      state.hide = (state.hide || []).filter((x) => x !== name).concat(el.checked ? [] : [name]);
      draw();
    });
  });
}

// A map's y/x faces: the variable's last two dimensions are its projected y and x.
function mapFaces() {
  return variable().map ? visibleFaces().filter((f) => f.a === 0) : [];
}

// Drawing limited to face f on screen: lines end at its edges.
function clipToFace(ctx, mvp, f) {
  ctx.beginPath();
  [[0, 0], [1, 0], [1, 1], [0, 1]].forEach(([b, c], n) => {
    const q = project(mvp, facePoint(f, b, c));
    if (n) ctx.lineTo(q[0], q[1]); else ctx.moveTo(q[0], q[1]);
  });
  ctx.closePath();
  ctx.clip();
}

function drawOverlays(ctx, mvp) {
  const shown = overlays.filter((o) => !(state.hide || []).includes(o.name));
  if (!shown.length) return;
  const faces = mapFaces();
  for (const f of faces) {
    ctx.save();
    clipToFace(ctx, mvp, f);
    ctx.lineWidth = 1.5;
    for (const o of shown) {
      ctx.strokeStyle = o.colour;
      ctx.beginPath();
      for (const path of o.paths) for (let k = 0; k < path.length; k += 2) {
        const [tb, tc] = faceFraction(path[k], path[k + 1]);
        const q = project(mvp, facePoint(f, tb, tc));
        if (k) ctx.lineTo(q[0], q[1]); else ctx.moveTo(q[0], q[1]);
      }
      ctx.stroke();
    }
    ctx.restore();
  }
  // The key, above the legend's bottom: each overlay's colour and name.
  ctx.save();
  ctx.font = "11px system-ui, sans-serif";
  ctx.textAlign = "left";
  const W = $("labels").clientWidth, H = $("labels").clientHeight;
  shown.forEach((o, n) => {
    const y = H - 14 - 16 * (shown.length - 1 - n);
    ctx.fillStyle = o.colour;
    ctx.fillRect(W - LEGEND_WIDTH + 10, y - 4, 16, 3);
    ctx.fillStyle = "#cfd8e3";
    ctx.fillText(o.name.length > 14 ? o.name.slice(0, 13) + "…" : o.name, W - LEGEND_WIDTH + 32, y);
  });
  ctx.restore();
}

// ---------- grid lines ----------
// Polar stereographic (CF variants A and B, either pole; Snyder 1987, eq. 21-33 to 21-40):
// latitude/longitude in degrees to projected x/y in metres, and the latitude at a distance
// from the pole. Only the graticule uses them; values shown are always the cube's own.
function polarParams(p) {
  const f = p.inverse_flattening ? 1 / p.inverse_flattening : 0;
  const e = Math.sqrt(2 * f - f * f);
  const s = p.pole < 0 ? -1 : 1; // the south case is the north one mirrored
  const tOf = (phi) => Math.tan(Math.PI / 4 - phi / 2) / Math.pow((1 - e * Math.sin(phi)) / (1 + e * Math.sin(phi)), e / 2);
  let k; // rho = k * t
  const sp = p.standard_parallel;
  if (sp !== undefined && sp !== null && Math.abs(Math.abs(sp) - 90) > 1e-9) {
    const phic = (s * sp * Math.PI) / 180;
    const mc = Math.cos(phic) / Math.sqrt(1 - e * e * Math.sin(phic) ** 2);
    k = (p.semi_major_axis * mc) / tOf(phic);
  } else {
    const k0 = sp !== undefined && sp !== null ? 1 : p.scale;
    k = (2 * p.semi_major_axis * k0) / Math.sqrt((1 + e) ** (1 + e) * (1 - e) ** (1 - e));
  }
  return { e, s, tOf, k };
}

function polarXY(p, lat, lon) {
  const { s, tOf, k } = polarParams(p);
  const rho = k * tOf((s * lat * Math.PI) / 180);
  const dl = ((lon - p.lon0) * Math.PI) / 180;
  return [p.false_easting + rho * Math.sin(dl), p.false_northing - s * rho * Math.cos(dl)];
}

function polarLatOfRho(p, rho) {
  const { e, s, k } = polarParams(p);
  const t = rho / k;
  let phi = Math.PI / 2 - 2 * Math.atan(t);
  for (let n = 0; n < 8; n++) {
    const es = e * Math.sin(phi);
    phi = Math.PI / 2 - 2 * Math.atan(t * Math.pow((1 - es) / (1 + es), e / 2));
  }
  return (s * phi * 180) / Math.PI;
}

// The smallest step of `steps` giving at most `lines` lines over `extent`.
function niceStep(extent, lines, steps) {
  return steps.find((x) => extent / x <= lines) || steps[steps.length - 1];
}

// Where projected (x, y) falls on face f, in 0..1 along its rows (dim 1) and columns (dim 2):
// coordinates are cell centres on a regular grid.
function faceFraction(x, y) {
  const ya = axisOf(1).values, xa = axisOf(2).values;
  const dy = ya.length > 1 ? (ya[ya.length - 1] - ya[0]) / (ya.length - 1) : 1;
  const dx = xa.length > 1 ? (xa[xa.length - 1] - xa[0]) / (xa.length - 1) : 1;
  return [
    ((y - ya[0]) / dy + 0.5 - state.lo[1]) / (state.hi[1] - state.lo[1]),
    ((x - xa[0]) / dx + 0.5 - state.lo[2]) / (state.hi[2] - state.lo[2]),
  ];
}

// Latitude/longitude lines over a face of projected y/x, labelled where they enter it.
function drawGraticule(ctx, mvp, f, p) {
  const ya = axisOf(1).values, xa = axisOf(2).values;
  const yr = [ya[state.lo[1]], ya[state.hi[1] - 1]], xr = [xa[state.lo[2]], xa[state.hi[2] - 1]];
  const cx = (xr[0] + xr[1]) / 2 - p.false_easting, cy = (yr[0] + yr[1]) / 2 - p.false_northing;
  const hx = Math.abs(xr[1] - xr[0]) / 2, hy = Math.abs(yr[1] - yr[0]) / 2;
  // Distances from the pole to the nearest and farthest points of the selected area.
  const near = Math.hypot(Math.max(0, Math.abs(cx) - hx), Math.max(0, Math.abs(cy) - hy));
  const far = Math.hypot(Math.abs(cx) + hx, Math.abs(cy) + hy);
  const latA = polarLatOfRho(p, near), latB = polarLatOfRho(p, far);
  const [latLo, latHi] = [Math.min(latA, latB), Math.max(latA, latB)];
  const poleInside = near === 0;
  // Longitude seen from the pole: the whole circle when the pole is inside.
  const s = p.pole < 0 ? -1 : 1;
  const lonC = p.lon0 + (Math.atan2(cx, -s * cy) * 180) / Math.PI;
  const lonExt = poleInside ? 360 : Math.min(360, (2 * Math.atan2(Math.hypot(hx, hy), near) * 180) / Math.PI);
  const latStep = niceStep(latHi - latLo, 6, [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30]);
  const lonStep = niceStep(lonExt, 12, [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 45, 90]);
  const onScreen = (lat, lon) => {
    const [x, y] = polarXY(p, lat, lon);
    const [tb, tc] = faceFraction(x, y);
    return { inside: tb >= 0 && tb <= 1 && tc >= 0 && tc <= 1, at: project(mvp, facePoint(f, tb, tc)) };
  };
  // The label goes at the line's point on the face nearest [lat, lon] `prefer`, or where
  // the line comes in.
  const line = (points, label, prefer = null) => {
    ctx.beginPath();
    const inside = [];
    points.forEach(([lat, lon], n) => {
      const q = onScreen(lat, lon);
      if (n) ctx.lineTo(q.at[0], q.at[1]); else ctx.moveTo(q.at[0], q.at[1]);
      if (q.inside) inside.push(q.at);
    });
    ctx.stroke();
    if (!inside.length) return;
    const want = prefer ? onScreen(...prefer).at : inside[0];
    const d = (a) => Math.hypot(a[0] - want[0], a[1] - want[1]);
    labels.push([label, inside.reduce((a, b) => (d(b) < d(a) ? b : a))]);
  };
  const labels = [];
  const lon0 = poleInside ? -180 : lonC - lonExt / 2, lon1 = poleInside ? 180 : lonC + lonExt / 2;
  const fmt = (x, step) => +x.toFixed(step < 1 ? 1 : 0);
  // Latitudes are labelled in a row between two meridians: below the pole when it is
  // inside (where the meridian pointing down the screen is), else through the area's middle.
  const down = s < 0 ? p.lon0 + 180 : p.lon0;
  const labelLon = poleInside ? down - lonStep / 2 : (Math.floor(lonC / lonStep) + 0.5) * lonStep;
  for (let lat = Math.ceil(latLo / latStep) * latStep; lat <= latHi; lat += latStep) {
    if (Math.abs(Math.abs(lat) - 90) < 1e-9) continue;
    const pts = [];
    for (let n = 0; n <= 240; n++) pts.push([lat, lon0 + ((lon1 - lon0) * n) / 240]);
    line(pts, `${fmt(Math.abs(lat), latStep)}°${lat < 0 ? "S" : "N"}`, [lat, labelLon]);
  }
  // All the way round when the pole is inside: -180 and 180 are one line.
  const last = poleInside ? lon1 - lonStep / 2 : lon1;
  for (let lon = Math.ceil(lon0 / lonStep) * lonStep; lon <= last; lon += lonStep) {
    const pts = [];
    // From the outer edge towards the pole, so that the label sits where the line comes in.
    for (let n = 0; n <= 120; n++) pts.push([latLo + ((latHi - latLo) * (s < 0 ? 120 - n : n)) / 120, lon]);
    const w = ((lon % 360) + 540) % 360 - 180;
    line(pts, `${fmt(Math.abs(w), lonStep)}°${w === 0 || Math.abs(w) === 180 ? "" : w < 0 ? "W" : "E"}`);
  }
  window.cryocubeGrid = { latStep, lonStep, latRange: [latLo, latHi], lonRange: [lon0, lon1] };
  return labels;
}

// Grid lines over the visible faces: latitude/longitude on the y/x faces of a polar
// stereographic variable, else lines at the labelled cells of each face's two dimensions.
function drawGrid(ctx, mvp) {
  const v = variable();
  const labels = [];
  ctx.save();
  ctx.lineWidth = 1;
  ctx.strokeStyle = "rgba(255, 255, 255, 0.7)";
  for (const f of visibleFaces()) {
    ctx.save();
    clipToFace(ctx, mvp, f);
    if (v.projection && f.a === 0) labels.push(...drawGraticule(ctx, mvp, f, v.projection));
    else for (const d of [f.b, f.c]) {
      if (!shownDims().includes(d)) continue;
      for (const { t } of ticks(d, 6)) {
        const at = (u) => project(mvp, d === f.b ? facePoint(f, t, u) : facePoint(f, u, t));
        const a = at(0), b = at(1);
        ctx.beginPath(); ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); ctx.stroke();
      }
    }
    ctx.restore();
  }
  // Graticule labels, outlined to read over any colour.
  ctx.font = "10px system-ui, sans-serif";
  ctx.textAlign = "left";
  ctx.lineWidth = 3;
  ctx.strokeStyle = "rgba(0, 0, 0, 0.8)";
  ctx.fillStyle = "#fff";
  // A label that would cover one already drawn is left out.
  const taken = [];
  for (const [text, [x, y]] of labels) {
    const box = [x + 1, y - 14, x + 5 + ctx.measureText(text).width, y];
    if (taken.some((t) => box[0] < t[2] && t[0] < box[2] && box[1] < t[3] && t[1] < box[3])) continue;
    taken.push(box);
    ctx.strokeText(text, x + 3, y - 3);
    ctx.fillText(text, x + 3, y - 3);
  }
  ctx.restore();
}

const overlaps = (a, b) => a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];

// The box's outline (the hull of its corners on screen, 1.5 px outside the faces), so that
// a box whose faces are NaN drawn as background still shows where it is.
function drawOutline(ctx, mvp) {
  const pts = [];
  for (let i = 0; i < 8; i++) pts.push(project(mvp, world([0, 1, 2].map((d) => (i >> d) & 1))));
  pts.sort((p, q) => p[0] - q[0] || p[1] - q[1]);
  const cross = (o, a, b) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const half = (list) => {
    const h = [];
    for (const p of list) {
      while (h.length >= 2 && cross(h[h.length - 2], h[h.length - 1], p) <= 0) h.pop();
      h.push(p);
    }
    h.pop();
    return h;
  };
  const hull = [...half(pts), ...half(pts.slice().reverse())];
  if (hull.length < 3) return;
  const cx = hull.reduce((s, p) => s + p[0], 0) / hull.length, cy = hull.reduce((s, p) => s + p[1], 0) / hull.length;
  ctx.save();
  ctx.strokeStyle = "rgba(207, 216, 227, 0.55)";
  ctx.lineWidth = 1;
  ctx.beginPath();
  hull.forEach(([x, y], n) => {
    const l = Math.hypot(x - cx, y - cy) || 1;
    const q = [x + ((x - cx) / l) * 1.5, y + ((y - cy) / l) * 1.5];
    if (n) ctx.lineTo(q[0], q[1]); else ctx.moveTo(q[0], q[1]);
  });
  ctx.closePath();
  ctx.stroke();
  ctx.restore();
}

// Tick labels along one silhouette edge per dimension, at round values, thinned until none
// overlaps another, a title or the legend; an axis seen end-on (its edge shorter than a
// label) is not labelled. Every text's box is kept in window.cryocubeLabels for tests.
function drawLabels(mvp) {
  const lc = $("labels");
  const ctx = lc.getContext("2d");
  const dpr = window.devicePixelRatio || 1;
  lc.width = lc.clientWidth * dpr; lc.height = lc.clientHeight * dpr;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const W = lc.clientWidth, H = lc.clientHeight;
  ctx.clearRect(0, 0, W, H);
  if (state.grid) drawGrid(ctx, mvp);
  drawOverlays(ctx, mvp);
  drawOutline(ctx, mvp);
  const v = variable();
  legendGeometry = drawLegend(ctx, W, H, {
    lut: lutRgba, vmin: state.vmin, vmax: state.vmax, log: state.log,
    title: v.long_name || v.name, units: v.display_units,
    // The NaN swatch when there is NaN in view.
    nanRgb: NAN_RGBA[nanColour()].slice(0, 3).map((x) => Math.round(x * 255)), nanShown: nanInView,
    categories: legendCats && state.auto ? legendCats : null,
  });
  const taken = [legendGeometry.box];
  const drawn = [];
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#cfd8e3"; ctx.strokeStyle = "#cfd8e3";
  const centre = project(mvp, [0, 0, 0]);
  for (const d of shownDims()) {
    const [e1, e2] = [0, 1, 2].filter((x) => x !== d);
    let best = null;
    for (const s1 of [0, 1]) for (const s2 of [0, 1]) {
      const at = (t) => { const p = [0, 0, 0]; p[d] = t; p[e1] = s1; p[e2] = s2; return project(mvp, world(p)); };
      const m = at(0.5);
      const dist = Math.hypot(m[0] - centre[0], m[1] - centre[1]);
      if (!best || dist > best.dist) best = { at, dist, m };
    }
    const a = best.at(0), b = best.at(1);
    if (Math.hypot(a[0] - b[0], a[1] - b[1]) < 24) continue; // seen end-on
    const out = [best.m[0] - centre[0], best.m[1] - centre[1]];
    const len = Math.hypot(...out) || 1;
    const off = [(out[0] / len) * 14, (out[1] / len) * 14];
    const right = out[0] < 0;
    ctx.textAlign = right ? "right" : "left";
    const place = (list) => list.map(({ t, label }) => {
      const p = best.at(t);
      const x = p[0] + off[0], y = p[1] + off[1] + 4, w = ctx.measureText(label).width;
      return { p, label, x, y, box: right ? [x - w - 1, y - 10, x + 1, y + 3] : [x - 1, y - 10, x + w + 1, y + 3] };
    });
    // Fewer ticks until the labels fit; at the last, the ones that still collide go.
    let labels = [];
    for (const most of [6, 5, 4, 3, 2, 1]) {
      labels = place(ticks(d, most));
      const clash = labels.some((l, i) => taken.some((t) => overlaps(l.box, t)) || labels.some((m, j) => j < i && overlaps(l.box, m.box)));
      if (!clash) break;
    }
    let widest = 0;
    for (const l of labels) {
      if (taken.some((t) => overlaps(l.box, t))) continue;
      ctx.beginPath(); ctx.moveTo(l.p[0], l.p[1]); ctx.lineTo(l.p[0] + off[0] * 0.4, l.p[1] + off[1] * 0.4); ctx.stroke();
      ctx.fillText(l.label, l.x, l.y);
      taken.push(l.box);
      drawn.push({ text: l.label, box: l.box });
      widest = Math.max(widest, l.box[2] - l.box[0]);
    }
    const title = axisTitle(axisOf(d));
    ctx.font = "bold 12px system-ui, sans-serif";
    const tw = ctx.measureText(title).width;
    const mid = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
    const upright = Math.abs(out[0]) / len > 0.9;
    // Moved outwards, step by step, until it is clear of every label.
    let box = null, pos = null;
    for (let k = 0; k < 12; k++) {
      if (upright) {
        const x = Math.max(8, Math.min(W - LEGEND_WIDTH - 8, mid[0] + Math.sign(out[0]) * (14 + widest + 10 + 8 * k)));
        pos = [x, mid[1]];
        box = [x - 8, mid[1] - tw / 2, x + 6, mid[1] + tw / 2];
      } else {
        let tx = mid[0] + off[0] * (2.6 + 0.6 * k);
        const ty = Math.max(14, Math.min(H - 6, mid[1] + off[1] * (2.6 + 0.6 * k)));
        tx = right ? Math.max(tw + 4, Math.min(W - LEGEND_WIDTH, tx)) : Math.max(4, Math.min(W - LEGEND_WIDTH - tw, tx));
        pos = [tx, ty];
        box = right ? [tx - tw, ty - 11, tx, ty + 3] : [tx, ty - 11, tx + tw, ty + 3];
      }
      if (!taken.some((t) => overlaps(box, t))) break;
    }
    ctx.save();
    if (upright) {
      ctx.translate(pos[0], pos[1]);
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = "center";
      ctx.fillText(title, 0, 4);
    } else {
      ctx.textAlign = right ? "right" : "left";
      ctx.fillText(title, pos[0], pos[1]);
    }
    ctx.restore();
    taken.push(box);
    drawn.push({ text: title, box });
    ctx.font = "11px system-ui, sans-serif";
  }
  window.cryocubeLabels = drawn;
}

function resize() {
  const c = $("gl");
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(c.clientWidth * dpr)), h = Math.max(1, Math.round(c.clientHeight * dpr));
  if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
}

// ---------- picking ----------
// The cube cell under the mouse: intersect the mouse ray with the visible faces.
function pick(ev) {
  const c = $("gl");
  const r = c.getBoundingClientRect();
  const nx = ((ev.clientX - r.left) / r.width) * 2 - 1, ny = 1 - ((ev.clientY - r.top) / r.height) * 2;
  const { mvp } = viewMatrices();
  const inv = invert(mvp);
  const unproject = (z) => {
    const x = inv[0] * nx + inv[4] * ny + inv[8] * z + inv[12];
    const y = inv[1] * nx + inv[5] * ny + inv[9] * z + inv[13];
    const zz = inv[2] * nx + inv[6] * ny + inv[10] * z + inv[14];
    const w = inv[3] * nx + inv[7] * ny + inv[11] * z + inv[15];
    return [x / w, y / w, zz / w];
  };
  const o = unproject(-1), e = unproject(1);
  const dir = [e[0] - o[0], e[1] - o[1], e[2] - o[2]];
  const v = variable();
  let best = null;
  for (const f of visibleFaces()) {
    // The face's plane in world space, from three of its corners.
    const p0 = facePoint(f, 0, 0), pb = facePoint(f, 1, 0), pc = facePoint(f, 0, 1);
    const u1 = pb.map((x, i) => x - p0[i]), u2 = pc.map((x, i) => x - p0[i]);
    // Solve o + t dir = p0 + s1 u1 + s2 u2.
    const m = [[dir[0], -u1[0], -u2[0]], [dir[1], -u1[1], -u2[1]], [dir[2], -u1[2], -u2[2]]];
    const rhs = [p0[0] - o[0], p0[1] - o[1], p0[2] - o[2]];
    const sol = solve3(m, rhs);
    if (!sol) continue;
    const [t, s1, s2] = sol;
    if (t < 0 || s1 < 0 || s1 > 1 || s2 < 0 || s2 > 1) continue;
    if (!best || t < best.t) best = { t, f, s1, s2 };
  }
  if (!best) return null;
  const idx = [0, 0, 0];
  const f = best.f;
  idx[f.a] = f.index;
  idx[f.b] = Math.min(state.hi[f.b] - 1, state.lo[f.b] + Math.floor(best.s1 * (state.hi[f.b] - state.lo[f.b])));
  idx[f.c] = Math.min(state.hi[f.c] - 1, state.lo[f.c] + Math.floor(best.s2 * (state.hi[f.c] - state.lo[f.c])));
  return idx;
}

function solve3(m, r) {
  const det = (a) => a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
  const d = det(m);
  if (Math.abs(d) < 1e-12) return null;
  return [0, 1, 2].map((k) => det(m.map((row, i) => row.map((x, j) => (j === k ? r[i] : x)))) / d);
}

function invert(m) {
  const inv = new Float32Array(16);
  const a = Array.from(m);
  const [a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33] = a;
  const b00 = a00 * a11 - a01 * a10, b01 = a00 * a12 - a02 * a10, b02 = a00 * a13 - a03 * a10;
  const b03 = a01 * a12 - a02 * a11, b04 = a01 * a13 - a03 * a11, b05 = a02 * a13 - a03 * a12;
  const b06 = a20 * a31 - a21 * a30, b07 = a20 * a32 - a22 * a30, b08 = a20 * a33 - a23 * a30;
  const b09 = a21 * a32 - a22 * a31, b10 = a21 * a33 - a23 * a31, b11 = a22 * a33 - a23 * a32;
  const det = b00 * b11 - b01 * b10 + b02 * b09 + b03 * b08 - b04 * b07 + b05 * b06;
  const id = 1 / det;
  inv[0] = (a11 * b11 - a12 * b10 + a13 * b09) * id; inv[1] = (a02 * b10 - a01 * b11 - a03 * b09) * id;
  inv[2] = (a31 * b05 - a32 * b04 + a33 * b03) * id; inv[3] = (a22 * b04 - a21 * b05 - a23 * b03) * id;
  inv[4] = (a12 * b08 - a10 * b11 - a13 * b07) * id; inv[5] = (a00 * b11 - a02 * b08 + a03 * b07) * id;
  inv[6] = (a32 * b02 - a30 * b05 - a33 * b01) * id; inv[7] = (a20 * b05 - a22 * b02 + a23 * b01) * id;
  inv[8] = (a10 * b10 - a11 * b08 + a13 * b06) * id; inv[9] = (a01 * b08 - a00 * b10 - a03 * b06) * id;
  inv[10] = (a30 * b04 - a31 * b02 + a33 * b00) * id; inv[11] = (a21 * b02 - a20 * b04 - a23 * b00) * id;
  inv[12] = (a11 * b07 - a10 * b09 - a12 * b06) * id; inv[13] = (a00 * b09 - a01 * b07 + a02 * b06) * id;
  inv[14] = (a31 * b01 - a30 * b03 - a32 * b00) * id; inv[15] = (a20 * b03 - a21 * b01 + a22 * b00) * id;
  return inv;
}

// ---------- hover, profile ----------
// Latitude/longitude of projected (x, y) on a polar stereographic grid (the inverse of
// polarXY): shown beside the map coordinates on hover.
function polarLatLon(p, x, y) {
  const s = p.pole < 0 ? -1 : 1;
  const dx = x - p.false_easting, dy = y - p.false_northing;
  const lat = polarLatOfRho(p, Math.hypot(dx, dy));
  const lon = ((p.lon0 + (Math.atan2(dx, -s * dy) * 180) / Math.PI + 540) % 360) - 180;
  return [lat, lon];
}

const withUnit = (text, unit) => (unit ? `${text} ${unit}` : text);

// The hover box: the stored value (float32 text for float32 arrays) with its display unit,
// the cell's coordinates and indices, and latitude/longitude on polar maps. Anything that
// changes the picture clears it (see draw), so it never describes another view.
let hoverToken = 0;
function clearHover() {
  hoverToken++;
  $("hover").textContent = "";
  window.cryocubeHover = null;
}
async function hover(ev) {
  const idx = pick(ev);
  const token = ++hoverToken;
  if (!idx) { $("hover").textContent = ""; window.cryocubeHover = null; return; }
  const name = state.var;
  const r = await fetch(`/api/value?var=${encodeURIComponent(name)}&i=${idx[0]}&j=${idx[1]}&k=${idx[2]}`);
  if (token !== hoverToken || !r.ok || name !== state.var) return;
  const j = await r.json();
  const v = variable();
  const lines = [`${v.name} = ${j.value === null ? "NaN" : withUnit(j.text, v.display_units)}`];
  for (const d of shownDims()) lines.push(`${v.dims[d]} = ${coordLabel(d, idx[d])}  [${idx[d]}]`);
  let latlon = null;
  if (v.projection) {
    latlon = polarLatLon(v.projection, axisOf(2).values[idx[2]], axisOf(1).values[idx[1]]);
    const [la, lo] = latlon;
    lines.push(`lat ${Math.abs(la).toFixed(4)}°${la < 0 ? "S" : "N"}, lon ${Math.abs(lo).toFixed(4)}°${lo < 0 ? "W" : "E"}`);
  }
  $("hover").textContent = lines.join("\n");
  window.cryocubeHover = { var: name, index: idx, value: j.value, text: j.text, lines, latlon };
}

async function profile(ev) {
  const idx = pick(ev);
  if (!idx) return;
  const axis = state.paxis;
  const name = state.var;
  const r = await fetch(`/api/profile?var=${encodeURIComponent(name)}&axis=${axis}&i=${idx[0]}&j=${idx[1]}&k=${idx[2]}`);
  if (!r.ok || name !== state.var) return;
  const j = await r.json();
  lastProfile = { axis, idx, values: j.values, var: name };
  drawProfile();
}

let lastProfile = null;

// The profile panel over the stage (so it is seen at any window size): the values over the
// selected range of the axis, ticks and units on both axes, the clicked cell marked, lone
// values as dots.
function drawProfile() {
  const box = $("profilebox");
  if (!lastProfile || lastProfile.var !== state.var) { box.hidden = true; return; }
  box.hidden = false;
  const { axis, idx } = lastProfile;
  const lo = state.lo[axis], hi = state.hi[axis], n = hi - lo;
  const values = lastProfile.values.slice(lo, hi);
  const c = $("profile");
  const dpr = window.devicePixelRatio || 1;
  c.width = c.clientWidth * dpr; c.height = c.clientHeight * dpr;
  const ctx = c.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const W = c.clientWidth, H = c.clientHeight, L = 56, R = 10, T = 10, B = 34;
  ctx.clearRect(0, 0, W, H);
  ctx.font = "10px system-ui, sans-serif";
  ctx.fillStyle = "#cfd8e3"; ctx.strokeStyle = "#556";
  const v = variable();
  const finite = values.filter((x) => x !== null);
  const xOf = (i) => L + ((i - lo + 0.5) / n) * (W - L - R);
  // The x axis: the coordinate's ticks over the selected range.
  ctx.textAlign = "center";
  for (const t of ticks(axis, Math.max(2, Math.floor((W - L - R) / 90)))) {
    const x = L + t.t * (W - L - R);
    ctx.beginPath(); ctx.moveTo(x, H - B); ctx.lineTo(x, H - B + 4); ctx.stroke();
    ctx.fillText(t.label, x, H - B + 14);
  }
  ctx.fillText(axisTitle(axisOf(axis)), L + (W - L - R) / 2, H - 4);
  ctx.strokeRect(L, T, W - L - R, H - T - B);
  if (!finite.length) {
    ctx.fillText("all NaN in the selected range", L + (W - L - R) / 2, T + 30);
  } else {
    let ylo = Math.min(...finite), yhi = Math.max(...finite);
    if (!(yhi > ylo)) { ylo -= 0.5; yhi += 0.5; }
    const yOf = (x) => T + (1 - (x - ylo) / (yhi - ylo)) * (H - T - B);
    const yt = niceTicks(ylo, yhi, 4);
    ctx.textAlign = "right";
    for (const y of yt.values) {
      const py = yOf(y);
      ctx.beginPath(); ctx.moveTo(L - 4, py); ctx.lineTo(L, py); ctx.stroke();
      ctx.fillText(formatTick(y, yt.step), L - 6, py + 3);
    }
    ctx.save();
    ctx.translate(10, T + (H - T - B) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = "center";
    ctx.fillText(withUnit(v.name, v.display_units ? `[${v.display_units}]` : ""), 0, 0);
    ctx.restore();
    ctx.strokeStyle = "#6cf"; ctx.fillStyle = "#6cf";
    ctx.beginPath();
    values.forEach((x, k) => {
      if (x === null) return;
      const px = xOf(lo + k), py = yOf(x);
      const prev = k > 0 && values[k - 1] !== null, next = k + 1 < values.length && values[k + 1] !== null;
      if (prev) ctx.lineTo(px, py); else ctx.moveTo(px, py);
      // A value with no neighbour to join is a dot.
      if (!prev && !next) ctx.fillRect(px - 2, py - 2, 4, 4);
    });
    ctx.stroke();
    // The clicked cell.
    if (idx[axis] >= lo && idx[axis] < hi) {
      const px = xOf(idx[axis]);
      ctx.strokeStyle = "#f96";
      ctx.beginPath(); ctx.moveTo(px, T); ctx.lineTo(px, H - B); ctx.stroke();
      const x = lastProfile.values[idx[axis]];
      if (x !== null) { ctx.fillStyle = "#f96"; ctx.beginPath(); ctx.arc(px, yOf(x), 3.5, 0, 2 * Math.PI); ctx.fill(); }
    }
  }
  const at = shownDims().filter((d) => d !== axis).map((d) => `${v.dims[d]} ${coordLabel(d, idx[d])}`).join(", ");
  $("pinfo").textContent = `${v.name} along ${v.dims[axis]} at ${at}`;
  window.cryocubeProfile = { axis, index: idx, values: lastProfile.values, shown: [lo, hi] };
}

// The profile's selected range as CSV: coordinate (UTC for time), value (empty for NaN).
function profileCsv() {
  const { axis, values } = lastProfile;
  const a = axisOf(axis), v = variable();
  const rows = [`${a.name}${a.labels ? "" : a.units && a.units !== "index" ? ` [${a.units}]` : ""},${v.name}${v.display_units ? ` [${v.display_units}]` : ""}`];
  for (let i = state.lo[axis]; i < state.hi[axis]; i++) rows.push(`${a.labels ? a.labels[i] : a.values[i]},${values[i] === null ? "" : values[i]}`);
  return rows.join("\n") + "\n";
}

function download(name, href) {
  const a = document.createElement("a");
  a.download = name;
  a.href = href;
  a.click();
}

// ---------- controls ----------
function buildControls() {
  const v = variable();
  $("title").textContent = meta.title;
  $("varinfo").textContent = `${v.long_name || ""} ${v.display_units ? "[" + v.display_units + "]" : ""} — ${shownDims().map((d) => `${v.dims[d]} ${v.shape[d]}`).join(" × ")}${v.flat ? " (a map)" : ""}`;
  const dims = $("dims");
  dims.querySelectorAll(".dim").forEach((e) => e.remove());
  $("paxis").innerHTML = shownDims().map((d) => `<option value="${d}">${v.dims[d]}</option>`).join("");
  if (!shownDims().includes(state.paxis)) state.paxis = 2;
  $("paxis").value = String(state.paxis);
  v.dims.forEach((name, d) => {
    if (!shownDims().includes(d)) return;
    const box = document.createElement("div");
    box.className = "dim";
    const n = v.shape[d];
    const a = axisOf(d);
    const unit = a.seconds ? "UTC" : a.units;
    box.innerHTML = `<label class="dname">${name} <span class="count" id="count${d}"></span></label>
      <label class="end">from <input type="range" min="0" max="${n - 1}" step="1" value="${state.lo[d]}" data-d="${d}" data-end="lo" id="lo${d}"></label>
      <label class="end">to <input type="range" min="1" max="${n}" step="1" value="${state.hi[d]}" data-d="${d}" data-end="hi" id="hi${d}"></label>
      <label class="typed${a.seconds ? " time" : ""}"><input type="text" id="from${d}" data-d="${d}" data-end="lo" title="first cell: a coordinate value (${unit})"> … <input type="text" id="to${d}" data-d="${d}" data-end="hi" title="last cell: a coordinate value (${unit})"> <span class="unit">${unit}</span></label>`;
    dims.appendChild(box);
  });
  dims.querySelectorAll("input[type=range]").forEach((el) => el.addEventListener("input", () => {
    const d = +el.dataset.d;
    if (el.dataset.end === "lo") state.lo[d] = Math.min(+el.value, state.hi[d] - 1);
    else state.hi[d] = Math.max(+el.value, state.lo[d] + 1);
    el.value = el.dataset.end === "lo" ? state.lo[d] : state.hi[d];
    showRanges();
    draw();
  }));
  // A typed coordinate (a UTC time on a time axis) goes to the nearest cell.
  dims.querySelectorAll("input[type=text]").forEach((el) => el.addEventListener("change", () => {
    const d = +el.dataset.d;
    const i = typedIndex(d, el.value);
    if (i === null) { el.classList.add("bad"); return; }
    el.classList.remove("bad");
    if (el.dataset.end === "lo") state.lo[d] = Math.min(i, state.hi[d] - 1);
    else state.hi[d] = Math.max(i + 1, state.lo[d] + 1);
    $(`lo${d}`).value = state.lo[d]; $(`hi${d}`).value = state.hi[d];
    showRanges();
    draw();
  }));
  $("presets").innerHTML = presets().map((p, n) => `<button data-n="${n}">${p.name}</button>`).join(" ");
  $("presets").querySelectorAll("button").forEach((b) => b.addEventListener("click", () => {
    Object.assign(state, presets()[+b.dataset.n].view, { panX: 0, panY: 0 });
    draw();
  }));
  showRanges();
  $("cmap").value = state.cmap;
  $("reverse").checked = state.reverse;
  $("auto").checked = state.auto;
  $("log").checked = state.log;
  $("nan").value = state.nan;
  $("proj").value = state.proj;
  $("grid").checked = !!state.grid;
  $("sym").checked = !!state.sym;
  animationControls();
  showLive();
  if (state.vmin !== null) $("vmin").value = state.vmin;
  if (state.vmax !== null) $("vmax").value = state.vmax;
}

function showRanges() {
  const v = variable();
  for (const d of shownDims()) {
    const a = axisOf(d);
    const text = (i) => (a.labels ? a.labels[i] : String(a.values[i]));
    $(`from${d}`).value = text(state.lo[d]);
    $(`to${d}`).value = text(state.hi[d] - 1);
    $(`count${d}`).textContent = state.hi[d] - state.lo[d] === v.shape[d] ? `(${v.shape[d]})` : `(${state.hi[d] - state.lo[d]} of ${v.shape[d]})`;
  }
}

// The cell nearest a typed coordinate of dimension d (a UTC time on a time axis; no zone
// means UTC), or null when the text is no value.
function typedIndex(d, text) {
  const a = axisOf(d);
  let x;
  if (a.seconds) {
    // "2020-07-22 00:00:01" as ISO 8601's "2020-07-22T00:00:01".
    const t = text.trim().replace(/^(\d{4}-\d\d-\d\d) +/, "$1T");
    const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(t) || !t.includes(":") ? t : t + "Z");
    if (!isFinite(ms)) return null;
    x = ms / 1000;
  } else x = parseFloat(text);
  if (!isFinite(x)) return null;
  const vals = a.seconds || a.values;
  return Math.max(0, Math.min(vals.length - 1, Math.round(indexOf(vals, x))));
}

// Looking straight at each pair of shown dimensions: the seismologist's time x distance
// waterfall among them. yaw/pitch turn the camera's axis onto the third dimension.
function presets() {
  const v = variable();
  if (v.flat) return [{ name: "map", view: { yaw: 0, pitch: 0 } }];
  const facing = [{ yaw: 0, pitch: 0 }, { yaw: 0, pitch: Math.PI / 2 }, { yaw: -Math.PI / 2, pitch: 0 }];
  return [0, 1, 2].map((normal) => {
    const [b, c] = [0, 1, 2].filter((d) => d !== normal);
    return { name: `${v.dims[b]} × ${v.dims[c]}`, view: facing[normal] };
  });
}

function wire() {
  $("var").innerHTML = meta.variables.map((v) => `<option>${v.name}</option>`).join("");
  $("var").value = state.var;
  $("var").addEventListener("change", () => {
    const was = variable();
    const next = meta.variables.find((v) => v.name === $("var").value);
    // The camera stays, unless the new variable is a map and the old a volume (or back).
    const camera = next.flat === was.flat ? { yaw: state.yaw, pitch: state.pitch, zoom: state.zoom, panX: state.panX, panY: state.panY } : {};
    // The same dimensions and lengths: the selected region stays.
    const same = JSON.stringify(next.dims) === JSON.stringify(was.dims) && JSON.stringify(next.shape) === JSON.stringify(was.shape);
    const region = same ? { lo: state.lo.slice(), hi: state.hi.slice(), paxis: state.paxis } : {};
    state = { ...defaultState(next), cmap: state.cmap, reverse: state.reverse, proj: state.proj, nan: state.nan, grid: state.grid, follow: state.follow, hide: state.hide, ...camera, ...region, ...colourBar(next) };
    clearHover();
    buildControls();
    draw();
  });
  $("cmap").innerHTML = Object.keys(COLORMAPS).map((k) => `<option>${k}</option>`).join("");
  $("cmap").addEventListener("change", () => { state.cmap = $("cmap").value; setLut(); draw(); });
  $("reverse").addEventListener("change", () => { state.reverse = $("reverse").checked; setLut(); draw(); });
  $("auto").addEventListener("change", () => { state.auto = $("auto").checked; draw(); });
  $("sym").addEventListener("change", () => {
    state.sym = $("sym").checked;
    if (state.sym && !state.auto) { const m = Math.max(Math.abs(state.vmin), Math.abs(state.vmax)); [state.vmin, state.vmax] = [-m, m]; $("vmin").value = -m; $("vmax").value = m; }
    draw();
  });
  $("csv").addEventListener("click", () => {
    if (lastProfile) download(`${state.var}-profile.csv`, "data:text/csv;charset=utf-8," + encodeURIComponent(profileCsv()));
  });
  $("pclose").addEventListener("click", () => { lastProfile = null; drawProfile(); });
  $("adim").addEventListener("change", () => { state.adim = +$("adim").value; animationControls(); });
  $("record").addEventListener("click", async () => {
    if (recording) return;
    const opts = { dim: +$("adim").value, from: +$("afrom").value, to: +$("ato").value, fps: Math.max(1, Math.min(60, +$("afps").value || 5)) };
    try {
      const bytes = await animate(opts);
      download(`${state.var}-${variable().dims[opts.dim]}.webm`, URL.createObjectURL(new Blob([bytes], { type: "video/webm" })));
      $("astatus").textContent = `${opts.to - opts.from + 1} frames`;
    } catch (e) { $("astatus").textContent = `failed: ${e.message || e}`; }
  });
  $("log").addEventListener("change", () => { state.log = $("log").checked; draw(); });
  $("nan").addEventListener("change", () => { state.nan = $("nan").value; draw(); });
  $("proj").addEventListener("change", () => { state.proj = $("proj").value; draw(); });
  $("grid").addEventListener("change", () => { state.grid = $("grid").checked; draw(); });
  $("follow").addEventListener("change", () => {
    state.follow = $("follow").checked;
    showLive();
    writeHash();
    if (state.follow) followLatest().catch(() => {});
  });
  for (const id of ["vmin", "vmax"]) $(id).addEventListener("change", () => {
    state.auto = false; $("auto").checked = false;
    state.vmin = parseFloat($("vmin").value); state.vmax = parseFloat($("vmax").value);
    draw();
  });
  $("paxis").addEventListener("change", () => { state.paxis = +$("paxis").value; lastProfile = null; drawProfile(); writeHash(); });
  $("reset").addEventListener("click", () => { const d = defaultState(variable()); Object.assign(state, { yaw: d.yaw, pitch: d.pitch, zoom: d.zoom, panX: 0, panY: 0 }); draw(); });
  $("png").addEventListener("click", () => download(`${state.var}.png`, pngDataUrl()));
  const c = $("gl");
  let drag = null;
  // Left drag rotates; right drag or shift+drag pans (moves the box across the screen).
  c.addEventListener("contextmenu", (e) => e.preventDefault());
  c.addEventListener("pointerdown", (e) => { drag = { x: e.clientX, y: e.clientY, moved: false, pan: e.button === 2 || e.shiftKey }; c.setPointerCapture(e.pointerId); });
  c.addEventListener("pointermove", (e) => {
    if (drag) {
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 2) drag.moved = true;
      drag.x = e.clientX; drag.y = e.clientY;
      if (drag.pan) {
        // World units per CSS pixel at the box's distance.
        const k = (2 * (3.0 / state.zoom) * Math.tan((35 * Math.PI) / 360)) / c.clientHeight;
        state.panX = (state.panX || 0) + dx * k;
        state.panY = (state.panY || 0) - dy * k;
      } else {
        // Damped: half a radian per 100 px, less when zoomed in.
        const k = 0.005 / Math.sqrt(Math.max(1, state.zoom));
        state.yaw += dx * k;
        state.pitch = Math.max(-Math.PI / 2, Math.min(Math.PI / 2, state.pitch + dy * k));
      }
      draw();
    } else hover(e);
  });
  c.addEventListener("pointerup", (e) => { if (drag && !drag.moved) profile(e); drag = null; });
  c.addEventListener("wheel", (e) => { e.preventDefault(); state.zoom = Math.max(0.3, Math.min(8, state.zoom * Math.exp(-e.deltaY * 0.001))); draw(); }, { passive: false });
  window.addEventListener("resize", () => draw());
}

// ---------- animation ----------
// A WebM of the view stepped along one dimension: frame k shows the selected range moved to
// start at cell from + k (its width kept, cut at the end), drawn with its labels, legend and
// overlays, and the coordinate of the front cell written in the corner.
function animationControls() {
  const v = variable();
  const dims = shownDims();
  const prefer = dims.includes(v.dims.indexOf("time")) ? v.dims.indexOf("time") : dims[0];
  const d = dims.includes(state.adim) ? state.adim : prefer;
  $("adim").innerHTML = dims.map((x) => `<option value="${x}">${v.dims[x]}</option>`).join("");
  $("adim").value = String(d);
  $("afrom").max = $("ato").max = String(v.shape[d] - 1);
  $("afrom").value = "0";
  $("ato").value = String(Math.min(v.shape[d] - 1, 59));
}

async function animate({ dim, from, to, fps }) {
  const v = variable();
  const n = v.shape[dim];
  from = Math.max(0, Math.min(n - 1, from | 0));
  to = Math.max(from, Math.min(n - 1, to | 0));
  const keep = { lo: state.lo.slice(), hi: state.hi.slice() };
  const width = state.hi[dim] - state.lo[dim];
  const glc = $("gl");
  // Even sides: VP8 encoders are happiest with them.
  const out = document.createElement("canvas");
  out.width = glc.width & ~1; out.height = glc.height & ~1;
  const ctx = out.getContext("2d");
  recording = true;
  try {
    return await recordWebm(to - from + 1, fps, out.width, out.height, async (k) => {
      const i = from + k;
      state.lo[dim] = i;
      state.hi[dim] = Math.min(n, i + width);
      await draw();
      render(lastLoaded);
      ctx.drawImage(glc, 0, 0);
      ctx.drawImage($("labels"), 0, 0, glc.width, glc.height);
      const dpr = window.devicePixelRatio || 1;
      ctx.save();
      ctx.scale(dpr, dpr);
      ctx.font = "bold 15px system-ui, sans-serif";
      ctx.fillStyle = "#fff";
      ctx.textAlign = "left";
      ctx.fillText(`${v.dims[dim]} ${coordLabel(dim, i)}`, 12, 24);
      ctx.restore();
      return out;
    }, (k) => { $("astatus").textContent = `${k} / ${to - from + 1}`; });
  } finally {
    recording = false;
    state.lo = keep.lo; state.hi = keep.hi;
    buildControls();
    draw();
  }
}
let recording = false;

// ---------- a growing cube ----------
// With "follow the latest time" on, the page asks every 2 s whether the cube grew (the server
// looks at the store at most once a second) and moves the time range to its end, keeping its
// width. Faces are fetched anew: those at the old end may have changed.
const FOLLOW_MS = 2000;
let followTimer = null;

function timeDim() {
  const v = variable();
  return v.flat ? -1 : v.dims.indexOf("time");
}

function showLive() {
  $("live").hidden = timeDim() < 0;
  $("follow").checked = !!state.follow && timeDim() >= 0;
  clearInterval(followTimer);
  followTimer = $("follow").checked ? setInterval(() => followLatest().catch(() => {}), FOLLOW_MS) : null;
}

async function followLatest() {
  const r = await fetch("/api/meta");
  if (!r.ok) return;
  const m = await r.json();
  const d = timeDim();
  const next = m.variables.find((x) => x.name === state.var);
  if (d < 0 || !next || next.shape[d] === variable().shape[d]) return;
  const width = state.hi[d] - state.lo[d];
  meta = m;
  state.hi[d] = next.shape[d];
  state.lo[d] = Math.max(0, next.shape[d] - width);
  for (const f of faces.values()) if (f.tex) gl.deleteTexture(f.tex);
  faces.clear();
  buildControls();
  await draw();
}

// The opening view of a volume turns to the faces with data: of the eight ways to see three
// faces, the one whose faces hold the most values (a lake mask with data at its last epoch
// only is seen from that side). Faces are asked for at the size already on screen.
async function openOnData() {
  if (variable().flat) return;
  const start = { yaw: state.yaw, pitch: state.pitch };
  const all = await Promise.all(faceList().map(async (f) => ({ f, face: await loadFace(f) })));
  const valid = (f) => {
    const x = all.find((y) => y.f.a === f.a && y.f.side === f.side).face;
    let n = 0;
    for (const q of x.data) if (q !== NAN_CODE) n++;
    return n / x.data.length;
  };
  let best = null;
  for (const yaw of [start.yaw, start.yaw + Math.PI / 2, start.yaw + Math.PI, start.yaw - Math.PI / 2]) for (const pitch of [start.pitch, -start.pitch]) {
    Object.assign(state, { yaw, pitch });
    const score = visibleFaces().reduce((s, f) => s + valid(f), 0);
    if (!best || score > best.score + 1e-9) best = { yaw, pitch, score };
  }
  Object.assign(state, { yaw: best.yaw, pitch: best.pitch });
  if (best.yaw !== start.yaw || best.pitch !== start.pitch) await draw();
}

// For tests and scripts: which faces are drawn, and where a face's point lands on screen.
window.cryocubeDebug = {
  png: () => pngDataUrl(),
  // WebGL's error flag (0: none since the last call), e.g. a texture bound after deletion.
  glError: () => gl.getError(),
  // The legend's parts as last drawn (bar box, ticks with their rows, NaN and class swatches).
  legend: () => legendGeometry,
  // The profile's selected range as the CSV the panel's button saves.
  profileCsv: () => (lastProfile ? profileCsv() : null),
  // Every axis label and title as last drawn: its text and box (CSS px in the stage).
  labels: () => window.cryocubeLabels,
  // Changes the view (e.g. the camera: {yaw, pitch}) and draws it.
  async setView(change) { Object.assign(state, change); await draw(); return frames; },
  // A WebM of the animation as base64 (tests read it back with ffprobe).
  async webm(opts) {
    const bytes = await animate(opts);
    let bin = "";
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(bin);
  },
  // Where projected map coordinates (x, y) land on screen (CSS px, page), on the visible y/x face.
  mapPointOnScreen(x, y) {
    const f = visibleFaces().find((g) => g.a === 0);
    if (!f) return null;
    const [tb, tc] = faceFraction(x, y);
    const r = $("gl").getBoundingClientRect();
    const [px, py] = project(viewMatrices().mvp, facePoint(f, tb, tc));
    return [r.left + px, r.top + py];
  },
  // Projected x/y of a latitude/longitude in the shown variable's grid mapping (null: none).
  polarXY: (lat, lon) => (variable().projection ? polarXY(variable().projection, lat, lon) : null),
  visible: () => visibleFaces().map((f) => [f.a, f.side]),
  facePointOnScreen(a, side, tb, tc) {
    const f = faceList().find((x) => x.a === a && x.side === side);
    const r = $("gl").getBoundingClientRect();
    const [x, y] = project(viewMatrices().mvp, facePoint(f, tb, tc));
    return [r.left + x, r.top + y];
  },
};

async function main() {
  try {
    const r = await fetch("/api/meta");
    if (!r.ok) throw new Error(`/api/meta: ${r.status}`);
    meta = await r.json();
    const fromUrl = readHash();
    const v = meta.variables.find((x) => fromUrl && x.name === fromUrl.var) || meta.variables[0];
    // A link may name only a few settings (no variable: the first one's view).
    const own = fromUrl && (!fromUrl.var || fromUrl.var === v.name);
    state = { ...defaultState(v), ...(own ? { ...fromUrl, var: v.name } : {}) };
    for (let d = 0; d < 3; d++) {
      state.lo[d] = Math.max(0, Math.min(v.shape[d] - 1, state.lo[d] | 0));
      state.hi[d] = Math.max(state.lo[d] + 1, Math.min(v.shape[d], state.hi[d] | 0));
    }
    // The first faces are asked for before WebGL starts (a software GL takes a few hundred
    // ms to start; the server reads the faces meanwhile).
    resize();
    for (const f of visibleFaces()) loadFace(f).catch(() => {});
    initGL();
    setLut();
    wire();
    buildControls();
    await loadOverlays().catch(() => {});
    await draw();
    if (!own && firstValid < 0.9) await openOnData();
  } catch (e) {
    $("status").textContent = `error: ${e.message || e}`;
    throw e;
  }
}

main();
