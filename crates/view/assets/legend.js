// The colour bar (or, for classes, a legend of swatches) drawn at the right of the picture,
// on the same canvas as the axis labels so that every export carries it. It maps values to
// colours exactly as the faces' shader does (the same 256-entry table, linear between
// entries), so a reader can take a value off a face by its colour.

import { niceTicks, logTicks, formatTick } from "/ticks.js";

// Room the legend takes at the right of the stage, CSS px.
export const LEGEND_WIDTH = 112;

// The colour at t (0..1) of a 256-entry RGBA table, as the shader samples it (linear
// filtering between entry centres).
export function lutColour(lut, t) {
  const x = Math.max(0, Math.min(1, t)) * 255;
  const i = Math.floor(x), j = Math.min(255, i + 1), f = x - i;
  return [0, 1, 2].map((c) => Math.round(lut[i * 4 + c] * (1 - f) + lut[j * 4 + c] * f));
}

// Where value v sits in the range (0..1), linear or logarithmic, as in the shader.
export function rangeFraction(v, lo, hi, log) {
  if (!(hi > lo)) return 0.5;
  return log ? (Math.log(v) - Math.log(lo)) / (Math.log(hi) - Math.log(lo)) : (v - lo) / (hi - lo);
}

const css = (rgb) => `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`;

// The bar's pixels, one row at a time, each the colour of the value at its centre (top: the
// range's end). Made once per colormap and size: a slider step redraws the legend, and
// hundreds of fills per frame cost milliseconds in a software canvas.
let barCache = { lut: null, w: 0, h: 0, image: null };
function barImage(lut, w, h) {
  if (barCache.lut === lut && barCache.w === w && barCache.h === h) return barCache.image;
  const image = document.createElement("canvas");
  image.width = w; image.height = h;
  const pixels = new ImageData(w, h);
  for (let y = 0; y < h; y++) {
    const rgb = lutColour(lut, 1 - (y + 0.5) / h);
    for (let x = 0; x < w; x++) pixels.data.set([rgb[0], rgb[1], rgb[2], 255], (y * w + x) * 4);
  }
  image.getContext("2d").putImageData(pixels, 0, 0);
  barCache = { lut, w, h, image };
  return image;
}

// Draws the legend into ctx (CSS px; the stage is W x H) and returns where its parts are:
// the bar's box, each tick's value and row, the NaN swatch, the class swatches.
// o: { lut, vmin, vmax, log, title, units, nanRgb, nanShown, categories: [{value, label}] | null,
//      text colour, font }
export function drawLegend(ctx, W, H, o) {
  const title = o.units ? `${o.title} [${o.units}]` : o.title;
  const out = { box: [W - LEGEND_WIDTH, 0, W, H], title, ticks: [], categories: [] };
  ctx.save();
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = o.text || "#cfd8e3";
  ctx.strokeStyle = o.text || "#cfd8e3";
  ctx.lineWidth = 1;
  const x0 = W - LEGEND_WIDTH + 10, bw = 16;
  if (o.categories) {
    // One swatch per class, top down, with its value and meaning; the title above them.
    ctx.font = "bold 12px system-ui, sans-serif";
    ctx.textAlign = "right";
    fitText(ctx, title, W - 6, 22, LEGEND_WIDTH - 8);
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "left";
    let y = 36;
    for (const c of o.categories) {
      const rgb = lutColour(o.lut, rangeFraction(c.value, o.vmin, o.vmax, false));
      ctx.fillStyle = css(rgb);
      ctx.fillRect(x0, y, bw, 14);
      ctx.fillStyle = o.text || "#cfd8e3";
      fitText(ctx, c.label, x0 + bw + 6, y + 11, W - x0 - bw - 10);
      out.categories.push({ value: c.value, x: x0 + bw / 2, y: y + 7, rgb });
      y += 20;
    }
    if (o.nanShown) out.nan = nanSwatch(ctx, o, x0, y, bw);
    ctx.restore();
    return out;
  }
  const y0 = 36, y1 = Math.max(y0 + 60, H - 80);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(barImage(o.lut, bw, y1 - y0), x0, y0);
  ctx.strokeStyle = "rgba(207, 216, 227, 0.6)";
  ctx.strokeRect(x0 - 0.5, y0 - 0.5, bw + 1, y1 - y0 + 1);
  ctx.strokeStyle = o.text || "#cfd8e3";
  ctx.fillStyle = o.text || "#cfd8e3";
  const rowOf = (v) => y1 - rangeFraction(v, o.vmin, o.vmax, o.log) * (y1 - y0);
  let values, step = 0;
  if (o.log) values = logTicks(o.vmin, o.vmax);
  else ({ values, step } = niceTicks(o.vmin, o.vmax, Math.max(2, Math.floor((y1 - y0) / 40))));
  ctx.textAlign = "left";
  let lastY = Infinity;
  for (const v of values) {
    const y = rowOf(v);
    if (y < y0 - 0.5 || y > y1 + 0.5) continue;
    ctx.beginPath(); ctx.moveTo(x0 + bw, Math.round(y) + 0.5); ctx.lineTo(x0 + bw + 4, Math.round(y) + 0.5); ctx.stroke();
    // Labels closer than a line of text are left out (the tick mark stays).
    if (lastY - y >= 12) {
      fitText(ctx, o.log ? formatTick(v, 0) : formatTick(v, step), x0 + bw + 6, y + 4, W - x0 - bw - 24);
      lastY = y;
    }
    out.ticks.push({ value: v, y });
  }
  out.bar = { x0, x1: x0 + bw, y0, y1 };
  // The title upright along the right edge.
  ctx.save();
  ctx.font = "bold 12px system-ui, sans-serif";
  ctx.translate(W - 8, (y0 + y1) / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textAlign = "center";
  fitText(ctx, title, 0, 0, y1 - y0 + 40);
  ctx.restore();
  if (o.nanShown) out.nan = nanSwatch(ctx, o, x0, y1 + 14, bw);
  ctx.restore();
  return out;
}

function nanSwatch(ctx, o, x, y, bw) {
  ctx.fillStyle = css(o.nanRgb);
  ctx.fillRect(x, y, bw, 12);
  ctx.strokeStyle = "rgba(207, 216, 227, 0.6)";
  ctx.strokeRect(x - 0.5, y - 0.5, bw + 1, 13);
  ctx.fillStyle = o.text || "#cfd8e3";
  ctx.textAlign = "left";
  ctx.fillText("NaN", x + bw + 6, y + 10);
  return { x: x + bw / 2, y: y + 6 };
}

// Text cut with an ellipsis to at most `width` px.
function fitText(ctx, text, x, y, width) {
  let t = text;
  while (t.length > 1 && ctx.measureText(t).width > width) t = t.slice(0, -2) + "…";
  ctx.fillText(t, x, y);
}
