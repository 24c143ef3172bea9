// A WebM file of one VP8 video track, written in the page from frames the browser's
// WebCodecs encoder makes: exactly one video frame per picture asked for (MediaRecorder
// films the canvas in real time and drops or repeats frames, so its frame count follows the
// clock, not the animation).
//
// Matroska/EBML as WebM players read it: an EBML header; a Segment holding Info (time scale
// 1 ms, duration), Tracks (one V_VP8 track) and Clusters of SimpleBlocks. Element sizes are
// written in 8 bytes, which every reader accepts, so nothing is measured twice.

const ID = {
  EBML: [0x1a, 0x45, 0xdf, 0xa3], EBMLVersion: [0x42, 0x86], EBMLReadVersion: [0x42, 0xf7],
  EBMLMaxIDLength: [0x42, 0xf2], EBMLMaxSizeLength: [0x42, 0xf3], DocType: [0x42, 0x82],
  DocTypeVersion: [0x42, 0x87], DocTypeReadVersion: [0x42, 0x85],
  Segment: [0x18, 0x53, 0x80, 0x67], Info: [0x15, 0x49, 0xa9, 0x66], TimecodeScale: [0x2a, 0xd7, 0xb1],
  Duration: [0x44, 0x89], MuxingApp: [0x4d, 0x80], WritingApp: [0x57, 0x41],
  Tracks: [0x16, 0x54, 0xae, 0x6b], TrackEntry: [0xae], TrackNumber: [0xd7], TrackUID: [0x73, 0xc5],
  FlagLacing: [0x9c], CodecID: [0x86], TrackType: [0x83], DefaultDuration: [0x23, 0xe3, 0x83],
  Video: [0xe0], PixelWidth: [0xb0], PixelHeight: [0xba],
  Cluster: [0x1f, 0x43, 0xb6, 0x75], Timecode: [0xe7], SimpleBlock: [0xa3],
};

const concat = (parts) => {
  const n = parts.reduce((s, p) => s + p.length, 0);
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
};

// An element: its ID, its size as an 8-byte EBML number, its body.
function el(id, body) {
  const size = new Uint8Array(8);
  size[0] = 0x01;
  let n = body.length;
  for (let i = 7; i >= 1; i--) { size[i] = n % 256; n = Math.floor(n / 256); }
  return concat([Uint8Array.from(id), size, body]);
}
function uint(id, v) {
  const bytes = [];
  do { bytes.unshift(v % 256); v = Math.floor(v / 256); } while (v > 0);
  return el(id, Uint8Array.from(bytes));
}
function float(id, v) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, v);
  return el(id, b);
}
const text = (id, s) => el(id, new TextEncoder().encode(s));

// Collects encoded VP8 frames and writes the file.
export class WebmWriter {
  constructor(width, height, fps) {
    Object.assign(this, { width, height, fps, clusters: [], blocks: [], clusterStart: 0, lastMs: 0, frames: 0 });
  }

  // One encoded frame: its bytes, its time in ms from the start, whether it is a key frame.
  add(data, ms, key) {
    // A block's time is a signed 16-bit offset from its cluster's: a new cluster at each key
    // frame, and at the latest every 30 s.
    if (!this.blocks.length || key || ms - this.clusterStart > 30000) {
      this.close();
      this.clusterStart = ms;
    }
    const head = new Uint8Array(4);
    head[0] = 0x81; // track 1
    new DataView(head.buffer).setInt16(1, Math.round(ms - this.clusterStart));
    head[3] = key ? 0x80 : 0x00;
    this.blocks.push(el(ID.SimpleBlock, concat([head, data])));
    this.lastMs = ms;
    this.frames++;
  }

  close() {
    if (this.blocks.length) this.clusters.push(el(ID.Cluster, concat([uint(ID.Timecode, Math.round(this.clusterStart)), ...this.blocks])));
    this.blocks = [];
  }

  // The whole file.
  finish() {
    this.close();
    const header = el(ID.EBML, concat([
      uint(ID.EBMLVersion, 1), uint(ID.EBMLReadVersion, 1), uint(ID.EBMLMaxIDLength, 4),
      uint(ID.EBMLMaxSizeLength, 8), text(ID.DocType, "webm"), uint(ID.DocTypeVersion, 2), uint(ID.DocTypeReadVersion, 2),
    ]));
    const frameMs = 1000 / this.fps;
    const info = el(ID.Info, concat([
      uint(ID.TimecodeScale, 1000000), float(ID.Duration, this.frames * frameMs),
      text(ID.MuxingApp, "cryocube"), text(ID.WritingApp, "cryocube view"),
    ]));
    const tracks = el(ID.Tracks, el(ID.TrackEntry, concat([
      uint(ID.TrackNumber, 1), uint(ID.TrackUID, 1), uint(ID.FlagLacing, 0), text(ID.CodecID, "V_VP8"),
      uint(ID.TrackType, 1), uint(ID.DefaultDuration, Math.round(frameMs * 1e6)),
      el(ID.Video, concat([uint(ID.PixelWidth, this.width), uint(ID.PixelHeight, this.height)])),
    ])));
    return concat([header, el(ID.Segment, concat([info, tracks, ...this.clusters]))]);
  }
}

// Encodes the pictures `next(k)` draws (k = 0..count-1; it resolves to a canvas) as VP8 at
// `fps` frames a second into a WebM file (Uint8Array). `progress(k)` after each frame.
export async function recordWebm(count, fps, width, height, next, progress = () => {}) {
  if (typeof VideoEncoder === "undefined") throw new Error("this browser cannot encode video (no WebCodecs VideoEncoder)");
  const config = { codec: "vp8", width, height, bitrate: Math.max(1e6, width * height * fps * 0.3), framerate: fps };
  const support = await VideoEncoder.isConfigSupported(config);
  if (!support.supported) throw new Error("this browser cannot encode VP8");
  const writer = new WebmWriter(width, height, fps);
  let failure = null;
  const encoder = new VideoEncoder({
    output: (chunk) => {
      const data = new Uint8Array(chunk.byteLength);
      chunk.copyTo(data);
      writer.add(data, chunk.timestamp / 1000, chunk.type === "key");
    },
    error: (e) => { failure = e; },
  });
  encoder.configure(config);
  for (let k = 0; k < count; k++) {
    const canvas = await next(k);
    const frame = new VideoFrame(canvas, { timestamp: Math.round((k * 1e6) / fps), duration: Math.round(1e6 / fps) });
    encoder.encode(frame, { keyFrame: k % Math.max(1, 2 * fps) === 0 });
    frame.close();
    if (failure) break;
    progress(k + 1);
  }
  await encoder.flush();
  encoder.close();
  if (failure) throw failure;
  return writer.finish();
}
