// cryocube view: the visible faces of a sub-cube as a 3-D box, in plain WebGL2.
//
// Each of the six faces of the box shows the slice of the variable at the face's side of the
// selected sub-cube; only the (at most three) faces turned to the camera are fetched and drawn.
// Faces arrive 16-bit quantised and thinned to the screen size; the shader maps them through a
// 256-entry colormap. Hover and profiles ask the server for exact stored values. The whole view
// state lives in the URL hash, so a link reopens the same view.

import { COLORMAPS } from "/colormaps.js";

const $ = (id) => document.getElementById(id);
const NAN_CODE = 65535;
// NaN colours: magenta is in none of the colormaps; the background suits sparse layers (a
// lake mask over a continent) where magenta would cover the screen.
const NAN_RGBA = { magenta: [1.0, 0.0, 1.0, 1.0], background: [0.086, 0.094, 0.11, 1.0] };

let meta = null;
let gl = null;
let prog = null;
let lutTex = null;
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
    auto: true, vmin: null, vmax: null, log: false, nan: "magenta", paxis: 2, grid: false, follow: false,
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
  return { mvp: mat4Mul(proj, view), view, proj, dist };
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
    if (faces.size > 48) {
      const [oldest] = faces.keys();
      if (faces.get(oldest).tex) gl.deleteTexture(faces.get(oldest).tex);
      faces.delete(oldest);
    }
    return face;
  })();
  pending.set(key, p);
  return p;
}

// Values of the visible parts of the faces, for the automatic range.
function robustRange(list) {
  const vals = [];
  for (const { f, face } of list) {
    const span = face.max - face.min;
    const r0 = Math.floor((state.lo[f.b] - face.originR) / face.stepR), r1 = Math.ceil((state.hi[f.b] - face.originR) / face.stepR);
    const c0 = Math.floor((state.lo[f.c] - face.originC) / face.stepC), c1 = Math.ceil((state.hi[f.c] - face.originC) / face.stepC);
    // A regular grid of about 80 x 80 cells per face is plenty for percentiles.
    const rs = Math.max(1, Math.floor((r1 - r0) / 80)), cs = Math.max(1, Math.floor((c1 - c0) / 80));
    for (let r = r0; r < Math.min(r1, face.rows); r += rs) for (let c = c0; c < Math.min(c1, face.cols); c += cs) {
      const q = face.data[r * face.cols + c];
      if (q !== NAN_CODE) vals.push(face.min + (q / 65534) * span);
    }
  }
  if (!vals.length) return [0, 1, true];
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
  return [lo, hi, vals[vals.length - 1] > 0];
}

// A logarithmic scale needs positive values: without any, the option is off and says why
// (dB values are logarithms already).
function checkLog(positive) {
  $("log").disabled = !positive;
  $("logwhy").textContent = positive ? "" : " (needs positive values)";
  if (!positive) { state.log = false; $("log").checked = false; }
}

let drawToken = 0;
async function draw() {
  const token = ++drawToken;
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
  if (state.auto) {
    const [lo, hi, positive] = robustRange(loaded);
    [state.vmin, state.vmax] = [lo, hi];
    $("vmin").value = +state.vmin.toPrecision(6);
    $("vmax").value = +state.vmax.toPrecision(6);
    checkLog(positive);
  } else checkLog(state.vmax > 0 && state.vmin > 0);
  render(loaded);
  const tDrawn = performance.now();
  drawLabels(viewMatrices().mvp);
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
  gl.uniform4fv(u("u_nan"), NAN_RGBA[state.nan] || NAN_RGBA.magenta);
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

// The cells labelled along dimension d (at most five, spread over the selected range), and
// where each sits in 0..1 along the sub-cube.
function ticks(d) {
  const n = state.hi[d] - state.lo[d];
  const k = Math.min(4, n);
  const out = [];
  for (let j = 0; j <= k; j++) {
    const i = Math.min(state.hi[d] - 1, state.lo[d] + Math.round((k ? j / k : 0) * (n - 1)));
    out.push({ i, t: k ? (i - state.lo[d] + 0.5) / n : 0.5 });
  }
  return out;
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
    // Lines end at the face's edges.
    ctx.beginPath();
    [[0, 0], [1, 0], [1, 1], [0, 1]].forEach(([b, c], n) => {
      const q = project(mvp, facePoint(f, b, c));
      if (n) ctx.lineTo(q[0], q[1]); else ctx.moveTo(q[0], q[1]);
    });
    ctx.closePath();
    ctx.clip();
    if (v.projection && f.a === 0) labels.push(...drawGraticule(ctx, mvp, f, v.projection));
    else for (const d of [f.b, f.c]) {
      if (!shownDims().includes(d)) continue;
      for (const { t } of ticks(d)) {
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

// Tick labels along one silhouette edge per dimension.
function drawLabels(mvp) {
  const lc = $("labels");
  const ctx = lc.getContext("2d");
  const dpr = window.devicePixelRatio || 1;
  lc.width = lc.clientWidth * dpr; lc.height = lc.clientHeight * dpr;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, lc.clientWidth, lc.clientHeight);
  if (state.grid) drawGrid(ctx, mvp);
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#cfd8e3"; ctx.strokeStyle = "#cfd8e3";
  const v = variable();
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
    const out = [best.m[0] - centre[0], best.m[1] - centre[1]];
    const len = Math.hypot(...out) || 1;
    const off = [(out[0] / len) * 14, (out[1] / len) * 14];
    ctx.textAlign = out[0] < 0 ? "right" : "left";
    let widest = 0;
    for (const { i, t } of ticks(d)) {
      const p = best.at(t);
      ctx.beginPath(); ctx.moveTo(p[0], p[1]); ctx.lineTo(p[0] + off[0] * 0.4, p[1] + off[1] * 0.4); ctx.stroke();
      ctx.fillText(coordLabel(d, i), p[0] + off[0], p[1] + off[1] + 4);
      widest = Math.max(widest, ctx.measureText(coordLabel(d, i)).width);
    }
    const ax = axisOf(d);
    const title = ax.units && ax.units !== "index" && !ax.labels ? `${ax.name} (${ax.units})` : ax.name;
    ctx.font = "bold 12px system-ui, sans-serif";
    const W = lc.clientWidth, H = lc.clientHeight;
    const mid = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
    if (Math.abs(out[0]) / len > 0.9) {
      // An upright edge with its labels beside it: the title upright beyond the labels.
      const x = Math.max(12, Math.min(W - 12, mid[0] + Math.sign(out[0]) * (14 + widest + 10)));
      ctx.save();
      ctx.translate(x, mid[1]);
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = "center";
      ctx.fillText(title, 0, 4);
      ctx.restore();
    } else {
      // Kept inside the canvas, whatever the zoom.
      const tw = ctx.measureText(title).width;
      let tx = mid[0] + off[0] * 2.6;
      const ty = Math.max(14, Math.min(H - 6, mid[1] + off[1] * 2.6));
      tx = ctx.textAlign === "right" ? Math.max(tw + 4, Math.min(W - 4, tx)) : Math.max(4, Math.min(W - tw - 4, tx));
      ctx.fillText(title, tx, ty);
    }
    ctx.font = "11px system-ui, sans-serif";
  }
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
let hoverToken = 0;
async function hover(ev) {
  const idx = pick(ev);
  const token = ++hoverToken;
  if (!idx) { $("hover").textContent = ""; return; }
  const r = await fetch(`/api/value?var=${encodeURIComponent(state.var)}&i=${idx[0]}&j=${idx[1]}&k=${idx[2]}`);
  if (token !== hoverToken || !r.ok) return;
  const j = await r.json();
  const v = variable();
  const lines = [`${v.name} = ${j.value === null ? "NaN" : j.text}${v.units ? " " + v.units : ""}`];
  for (const d of shownDims()) lines.push(`${v.dims[d]} = ${coordLabel(d, idx[d])}  [${idx[d]}]`);
  $("hover").textContent = lines.join("\n");
  window.cryocubeHover = { index: idx, value: j.value, text: j.text };
}

async function profile(ev) {
  const idx = pick(ev);
  if (!idx) return;
  const axis = state.paxis;
  const r = await fetch(`/api/profile?var=${encodeURIComponent(state.var)}&axis=${axis}&i=${idx[0]}&j=${idx[1]}&k=${idx[2]}`);
  if (!r.ok) return;
  const j = await r.json();
  drawProfile(axis, idx, j.values);
}

function drawProfile(axis, idx, values) {
  const c = $("profile");
  const dpr = window.devicePixelRatio || 1;
  c.width = c.clientWidth * dpr; c.height = c.clientHeight * dpr;
  const ctx = c.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const W = c.clientWidth, H = c.clientHeight, L = 44, B = 18;
  ctx.clearRect(0, 0, W, H);
  const finite = values.filter((x) => x !== null);
  if (!finite.length) { ctx.fillStyle = "#aaa"; ctx.fillText("all NaN", 10, 20); return; }
  const lo = Math.min(...finite), hi = Math.max(...finite);
  const span = hi - lo || 1;
  ctx.strokeStyle = "#6cf"; ctx.beginPath();
  let pen = false;
  values.forEach((x, i) => {
    if (x === null) { pen = false; return; }
    const px = L + (i / Math.max(1, values.length - 1)) * (W - L - 6), py = 6 + (1 - (x - lo) / span) * (H - B - 12);
    if (pen) ctx.lineTo(px, py); else ctx.moveTo(px, py);
    pen = true;
  });
  ctx.stroke();
  ctx.fillStyle = "#cfd8e3"; ctx.font = "10px system-ui, sans-serif";
  ctx.fillText(+hi.toPrecision(4), 2, 12); ctx.fillText(+lo.toPrecision(4), 2, H - B);
  ctx.fillText(coordLabel(axis, 0), L, H - 4);
  ctx.textAlign = "right"; ctx.fillText(coordLabel(axis, values.length - 1), W - 4, H - 4); ctx.textAlign = "left";
  const v = variable();
  const at = shownDims().filter((d) => d !== axis).map((d) => `${v.dims[d]} ${coordLabel(d, idx[d])}`).join(", ");
  $("pinfo").textContent = `${v.name} along ${v.dims[axis]} at ${at}`;
  window.cryocubeProfile = { axis, index: idx, values };
}

// ---------- controls ----------
function buildControls() {
  const v = variable();
  $("title").textContent = meta.title;
  $("varinfo").textContent = `${v.long_name || ""} ${v.units ? "[" + v.units + "]" : ""} — ${shownDims().map((d) => `${v.dims[d]} ${v.shape[d]}`).join(" × ")}${v.flat ? " (a map)" : ""}`;
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
    box.innerHTML = `<label>${name}</label>
      <input type="range" min="0" max="${n - 1}" step="1" value="${state.lo[d]}" data-d="${d}" data-end="lo" id="lo${d}">
      <input type="range" min="1" max="${n}" step="1" value="${state.hi[d]}" data-d="${d}" data-end="hi" id="hi${d}">
      <div class="vals" id="vals${d}"></div>`;
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
  showRanges();
  $("cmap").value = state.cmap;
  $("reverse").checked = state.reverse;
  $("auto").checked = state.auto;
  $("log").checked = state.log;
  $("nan").value = state.nan;
  $("proj").value = state.proj;
  $("grid").checked = !!state.grid;
  showLive();
  if (state.vmin !== null) $("vmin").value = state.vmin;
  if (state.vmax !== null) $("vmax").value = state.vmax;
}

function showRanges() {
  const v = variable();
  for (const d of shownDims()) {
    $(`vals${d}`).textContent = `${coordLabel(d, state.lo[d])} …\n${coordLabel(d, state.hi[d] - 1)} (${state.hi[d] - state.lo[d] === v.shape[d] ? v.shape[d] : `${state.hi[d] - state.lo[d]} of ${v.shape[d]}`})`;
  }
}

function wire() {
  $("var").innerHTML = meta.variables.map((v) => `<option>${v.name}</option>`).join("");
  $("var").value = state.var;
  $("var").addEventListener("change", () => {
    const was = variable();
    const next = meta.variables.find((v) => v.name === $("var").value);
    // The camera stays, unless the new variable is a map and the old a volume (or back).
    const camera = next.flat === was.flat ? { yaw: state.yaw, pitch: state.pitch } : {};
    state = { ...defaultState(next), cmap: state.cmap, reverse: state.reverse, proj: state.proj, nan: state.nan, grid: state.grid, follow: state.follow, ...camera, ...colourBar(next) };
    buildControls();
    draw();
  });
  $("cmap").innerHTML = Object.keys(COLORMAPS).map((k) => `<option>${k}</option>`).join("");
  $("cmap").addEventListener("change", () => { state.cmap = $("cmap").value; setLut(); draw(); });
  $("reverse").addEventListener("change", () => { state.reverse = $("reverse").checked; setLut(); draw(); });
  $("auto").addEventListener("change", () => { state.auto = $("auto").checked; draw(); });
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
  $("paxis").addEventListener("change", () => { state.paxis = +$("paxis").value; writeHash(); });
  $("reset").addEventListener("click", () => { const d = defaultState(variable()); Object.assign(state, { yaw: d.yaw, pitch: d.pitch, zoom: d.zoom, panX: 0, panY: 0 }); draw(); });
  $("png").addEventListener("click", () => {
    const a = document.createElement("a");
    a.download = `${state.var}.png`;
    a.href = pngDataUrl();
    a.click();
  });
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
        state.yaw += dx * 0.01;
        state.pitch = Math.max(-1.5, Math.min(1.5, state.pitch + dy * 0.01));
      }
      draw();
    } else hover(e);
  });
  c.addEventListener("pointerup", (e) => { if (drag && !drag.moved) profile(e); drag = null; });
  c.addEventListener("wheel", (e) => { e.preventDefault(); state.zoom = Math.max(0.3, Math.min(8, state.zoom * Math.exp(-e.deltaY * 0.001))); draw(); }, { passive: false });
  window.addEventListener("resize", () => draw());
}

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

// For tests and scripts: which faces are drawn, and where a face's point lands on screen.
window.cryocubeDebug = {
  png: () => pngDataUrl(),
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
    await draw();
  } catch (e) {
    $("status").textContent = `error: ${e.message || e}`;
    throw e;
  }
}

main();
