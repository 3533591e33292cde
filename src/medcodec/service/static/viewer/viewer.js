// medcodec viewer: study/series list (QIDO-RS), stack viewer with window/level on the real
// sample values, progressive loading (preview first), compare original | preset | difference.
// No dependencies, no network other than the server that served this page.

// ----------------------------------------------------------------------------- locations
const BASE = location.pathname.replace(/[^/]*$/, ""); // ".../viewer/"
const ROOT = BASE.replace(/viewer\/$/, ""); // "/" (or a reverse-proxy prefix)
const DICOMWEB = `${ROOT}dicomweb`;
const API = `${BASE}api`;
const params = new URLSearchParams(location.search);
// A server bound off loopback wants a bearer token on every request: give it in the fragment
// (#token=...), which browsers never send to the server or put in a Referer. It is then kept in this
// tab's sessionStorage (a reload keeps it) and taken out of the address, which a user shares or
// bookmarks: the address kept it, and handed the server's token to whoever got a link to a view (an
// outside audit, 2026-12-05).
const TOKEN_KEY = "medcodec-token";
const TOKEN = (() => {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const given = fragment.get("token");
  try {
    if (given === null) return sessionStorage.getItem(TOKEN_KEY);
    sessionStorage.setItem(TOKEN_KEY, given);
  } catch {
    // no storage here (a sandboxed frame): the token lives as long as the page
  }
  fragment.delete("token");
  const rest = fragment.toString();
  window.history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  return given;
})();
const auth = (headers = {}) => (TOKEN ? { ...headers, Authorization: `Bearer ${TOKEN}` } : headers);

// ----------------------------------------------------------------------------- state
const CT_WINDOWS = [
  ["Brain", 40, 80],
  ["Soft tissue", 40, 400],
  ["Lung", -600, 1500],
  ["Bone", 400, 1800],
];
const CACHE_BYTES = 256 * 1024 * 1024; // decoded samples kept (~500 CT slices of 512x512x2 bytes)
const PREFETCH = 6; // slices either side loaded ahead
const MAX_IN_FLIGHT = 4;

const state = {
  studies: [],
  listing: Promise.resolve(), // the study list being loaded
  study: null,
  series: null,
  stack: null, // /viewer/api/.../stack
  slice: 0,
  preset: "diagnostic",
  mode: "single",
  window: null, // [center, width] in output units (HU for CT)
  fn: "LINEAR", // the window's VOI LUT Function (PS3.3 C.11.2.1.3): LINEAR, LINEAR_EXACT or SIGMOID
  lut: null, // index into stack.voi_luts when the header's VOI LUT is shown instead of a window
  windows: [], // [[name, c, w, fn, lut], ...]
  view: { zoom: 1, px: 0, py: 0 }, // shared by all panes (pan in image pixels)
  swipe: 0.5, // swipe view: the original shows left of this fraction of the pane's width
  diffRange: "auto",
  cine: null,
  t0: performance.timeOrigin ? 0 : performance.now(),
  firstImage: null, // {ms, preset, bytes}
  bytesTotal: 0,
  errors: [],
  opening: 0, // ticket of the latest series asked for: an older answer that arrives late is dropped
};
// Read by tests and handy from the console: what each pane shows right now.
const shown = { original: null, preset: null, diff: null };
const history = []; // [{slice, preset, t}] every time the preset pane shows a new frame
window.medcodecViewer = { state, shown, history };

const $ = (sel) => document.querySelector(sel);
const fmtBytes = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${n} B`);
const fmt = (v, d = 1) => (v == null ? "–" : Number(v).toFixed(d));
const TS_NAMES = {
  "1.2.840.10008.1.2": "implicit LE",
  "1.2.840.10008.1.2.1": "explicit LE",
  "1.2.840.10008.1.2.2": "explicit BE",
  "1.2.840.10008.1.2.1.99": "deflated LE",
  "1.2.840.10008.1.2.4.50": "JPEG 8-bit .50",
  "1.2.840.10008.1.2.4.51": "JPEG 12-bit .51",
  "1.2.840.10008.1.2.4.57": "JPEG lossless .57",
  "1.2.840.10008.1.2.4.70": "JPEG lossless .70",
  "1.2.840.10008.1.2.4.80": "JPEG-LS lossless .80",
  "1.2.840.10008.1.2.4.81": "JPEG-LS near-lossless .81",
  "1.2.840.10008.1.2.4.90": "JPEG 2000 lossless .90",
  "1.2.840.10008.1.2.4.91": "JPEG 2000 .91",
  "1.2.840.10008.1.2.4.201": "HTJ2K lossless .201",
  "1.2.840.10008.1.2.4.202": "HTJ2K RPCL lossless .202",
  "1.2.840.10008.1.2.4.203": "HTJ2K .203",
  "1.2.840.10008.1.2.5": "RLE",
  mdc: ".mdc (medcodec)",
};
const PRESET_TITLES = {
  preview: "preview (not for diagnosis)",
  mdc: ".mdc at the diagnostic's size",
};
const tsName = (uid) => TS_NAMES[uid] || uid || "?";
// a path segment: UIDs reach us from the page's own URL too (?study=..%2F..): never a path of their own
const enc = (segment) => encodeURIComponent(String(segment));
// PS3.5 §9.1: digits and dots, no leading zero, at most 64 characters
const isUid = (v) => typeof v === "string" && v.length > 0 && v.length <= 64 && /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/.test(v);

function setStatus(text, isError = false) {
  const el = $("#status");
  el.textContent = text;
  el.style.color = isError ? "#ff7b7b" : "";
  state.statusIsError = isError;
  if (isError) state.errors.push(text);
}

const showError = (e) => setStatus(String((e && e.message) || e), true);

async function errorText(r) {
  try {
    const j = await r.json();
    return `${r.status}: ${j.detail || j.message || j.error || JSON.stringify(j)}`;
  } catch {
    return `${r.status} ${r.statusText}`;
  }
}

async function getJson(url, accept = "application/json") {
  const r = await fetch(url, { headers: auth({ Accept: accept }) });
  if (r.status === 204) return [];
  if (!r.ok) throw new Error(`${url}: ${await errorText(r)}`);
  return r.json();
}

// DICOM JSON (PS3.18 §F.2) helpers
// A person name (PS3.18 §F.2.2) is every component group it has, "Yamada^Tarou = 山田^太郎 = やまだ^たろう":
// only the Alphabetic one was shown, so a name held in Ideographic characters alone read "(no name)".
const personName = (v) => [v.Alphabetic, v.Ideographic, v.Phonetic].filter(Boolean).join(" = ");
const tagValue = (obj, tag) => {
  const e = obj && obj[tag];
  if (!e || !e.Value || !e.Value.length) return "";
  const v = e.Value[0];
  return typeof v === "object" && v !== null ? personName(v) : v;
};
const tagValues = (obj, tag) => (obj && obj[tag] && obj[tag].Value) || [];

// ----------------------------------------------------------------------------- frame loading
class Cancelled extends Error {}
const cache = new Map(); // key -> frame (LRU by insertion order)
const inflight = new Map(); // key -> promise
const failed = new Map(); // key -> why the frame could not be loaded (shown in its pane, not "loading…")
window.medcodecViewer.cacheEntries = () => [...cache.entries()];
let queue = []; // pending tasks {key, prio, run, resolve, reject}
let active = 0;

// keyed by series too: a frame can never be drawn under another series' stack
const frameKey = (preset, idx, st = state.stack) => `${st ? st.series : ""}|${preset}|${idx}`;
const frameBytes = (f) => (f.pixels ? f.pixels.byteLength : f.rows * f.cols * 4);
function cacheBytes() {
  let n = 0;
  for (const f of cache.values()) n += frameBytes(f);
  return n;
}

function cached(preset, idx) {
  const k = frameKey(preset, idx);
  const f = cache.get(k);
  if (f) {
    cache.delete(k);
    cache.set(k, f);
  }
  return f || null;
}

function pump() {
  while (active < MAX_IN_FLIGHT && queue.length) {
    const task = queue.shift();
    active++;
    task
      .run()
      .then(task.resolve, task.reject)
      .finally(() => {
        active--;
        pump();
      });
  }
}

// queued (not started) fetches dropped: prefetches, and with `slice` those of every other slice (a
// fast scroll queued the preview, preset and original of every slice passed, oldest first, so the
// slice stopped on came last: 22-28 s over a 10 Mbit/s link, an outside audit, 2026-12-05)
function cancelPrefetch(all = false, slice = null) {
  const keep = [];
  for (const t of queue) {
    if (all || t.prio >= 10 || (slice !== null && t.idx !== slice)) {
      inflight.delete(t.key);
      t.reject(new Cancelled());
    } else keep.push(t);
  }
  queue = keep;
}

function available(preset, idx) {
  const inst = state.stack && state.stack.slices[idx] && state.stack.slices[idx].inst;
  return !!inst && (preset === "original" || !!inst.presets[preset]);
}

function getFrame(preset, idx, prio) {
  const f = cached(preset, idx);
  if (f) return Promise.resolve(f);
  const key = frameKey(preset, idx);
  if (inflight.has(key)) {
    const t = queue.find((q) => q.key === key);
    if (t && prio < t.prio) {
      t.prio = prio;
      queue.sort((a, b) => a.prio - b.prio);
    }
    return inflight.get(key);
  }
  const stack = state.stack;
  const p = new Promise((resolve, reject) => {
    queue.push({ key, idx, prio, run: () => fetchFrame(stack, preset, idx), resolve, reject });
    queue.sort((a, b) => a.prio - b.prio);
  });
  inflight.set(key, p);
  pump();
  const forget = () => {
    if (inflight.get(key) === p) inflight.delete(key);
  };
  p.then(
    (frame) => {
      forget();
      if (stack !== state.stack) return;
      cache.set(key, frame);
      while (cacheBytes() > CACHE_BYTES && cache.size > 1) cache.delete(cache.keys().next().value);
    },
    forget,
  );
  return p;
}

// Frames are fetched and decoded by a small pool of workers (frames.worker.js), so the page's
// thread only windows and draws.
const WORKERS = Math.max(1, Math.min(2, navigator.hardwareConcurrency || 2));
const pool = [];
const pending = new Map(); // id -> {resolve, reject, worker}
let nextId = 1;

function worker() {
  if (pool.length < WORKERS) {
    const w = new Worker(new URL("./frames.worker.js", import.meta.url), { type: "module" });
    w.busy = 0;
    w.onmessage = (e) => {
      const p = pending.get(e.data.id);
      if (!p) return;
      pending.delete(e.data.id);
      w.busy--;
      p.resolve(e.data);
    };
    w.onerror = (e) => {
      for (const [id, p] of pending) {
        if (p.worker === w) {
          pending.delete(id);
          p.reject(new Error(`frame decoder failed: ${e.message || "worker error"}`));
        }
      }
      w.busy = 0;
    };
    pool.push(w);
    return w;
  }
  return pool.reduce((a, b) => (b.busy < a.busy ? b : a));
}

function inWorker(url) {
  const w = worker();
  const id = nextId++;
  w.busy++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject, worker: w });
    w.postMessage({ id, url: new URL(url, location.href).href, headers: auth() });
  });
}

async function fetchFrame(stack, preset, idx) {
  const { inst, frame } = stack.slices[idx];
  const url = `${API}/studies/${enc(stack.study)}/series/${enc(stack.series)}/instances/${enc(inst.sop)}/frames/${frame}?preset=${encodeURIComponent(preset)}`;
  const t0 = performance.now();
  if (inst.samples_per_pixel !== 1) return fetchRendered(stack, preset, idx, t0);
  const m = await inWorker(url);
  if (!m.ok && m.status === 406) return fetchRendered(stack, preset, idx, t0);
  if (!m.ok) throw new Error(`${preset} slice ${idx + 1}: ${m.error}`);
  const h = m.headers;
  state.bytesTotal += m.bytes;
  return {
    preset,
    idx,
    sop: inst.sop,
    rows: +h["x-rows"],
    cols: +h["x-columns"],
    pixels: m.pixels,
    kind: m.kind,
    slope: +h["x-rescale-slope"],
    intercept: +h["x-rescale-intercept"],
    mono1: h["x-photometric"] === "MONOCHROME1",
    ts: h["x-transfer-syntax"],
    encoding: h["x-encoding"],
    bytes: m.bytes,
    stored: +h["x-stored-bytes"],
    fetchMs: m.fetchMs,
    decodeMs: m.decodeMs,
  };
}

// Colour and other images the page cannot window: the server's WADO-RS /rendered (PS3.18 §9.5)
// of the preset's rendition (?preset=, the original for .mdc, which the server does not store),
// drawn as it comes (no window/level, no difference).
async function fetchRendered(stack, preset, idx, t0) {
  const { inst, frame } = stack.slices[idx];
  const shown = preset === "mdc" ? "original" : preset;
  const query = shown === "original" ? "" : `?preset=${encodeURIComponent(shown)}`;
  const url = `${DICOMWEB}/studies/${enc(stack.study)}/series/${enc(stack.series)}/instances/${enc(inst.sop)}/frames/${frame}/rendered${query}`;
  const r = await fetch(url, { headers: auth({ Accept: "image/png" }) });
  if (!r.ok) throw new Error(`slice ${idx + 1} (rendered): ${await errorText(r)}`);
  const blob = await r.blob();
  const t1 = performance.now();
  const bitmap = await createImageBitmap(blob);
  state.bytesTotal += blob.size;
  return {
    preset: shown, idx, sop: inst.sop, rows: bitmap.height, cols: bitmap.width, bitmap, kind: "rgb",
    slope: 1, intercept: 0, mono1: false, ts: r.headers.get("x-transfer-syntax") || "", encoding: "rendered",
    bytes: blob.size, stored: 0, fetchMs: t1 - t0, decodeMs: performance.now() - t1,
  };
}

// ----------------------------------------------------------------------------- drawing
const panes = {};
window.medcodecViewer.panes = panes;
for (const kind of ["original", "preset", "diff"]) {
  const fig = $(`#pane-${kind}`);
  panes[kind] = {
    kind,
    fig,
    canvas: fig.querySelector("canvas"),
    label: fig.querySelector(".label"),
    stats: fig.querySelector(".stats"),
    img: document.createElement("canvas"), // the windowed image at native resolution
    imgKey: null,
  };
}

const lutCache = new Map();
function lutFor(frame) {
  const [c, w] = state.window;
  const fn = state.fn || "LINEAR";
  const voi = state.lut != null && state.stack && state.stack.voi_luts ? state.stack.voi_luts[state.lut] : null;
  const key = `${frame.kind}|${frame.slope}|${frame.intercept}|${c}|${w}|${frame.mono1}|${fn}|${voi ? state.lut : ""}`;
  let lut = lutCache.get(key);
  if (lut) return lut;
  const n = frame.kind === "u8" ? 256 : 65536;
  const off = frame.kind === "i16" ? 32768 : 0;
  lut = new Uint32Array(n);
  // on output units: the header's VOI LUT (PS3.3 §C.11.2.1.1, values beyond it take its ends), else the
  // window by its function: linear §C.11.2.1.2.1, linear exact §C.11.2.1.3.2, sigmoid §C.11.2.1.3.1
  const lo = c - 0.5 - (w - 1) / 2;
  const hi = c - 0.5 + (w - 1) / 2;
  const top = voi ? 2 ** voi.bits - 1 : 1;
  const last = voi ? voi.data.length - 1 : 0;
  for (let i = 0; i < n; i++) {
    const v = (i - off) * frame.slope + frame.intercept;
    let g;
    if (voi) {
      const k = Math.round((Math.round(v) - voi.first) / voi.step);
      g = Math.round((voi.data[k < 0 ? 0 : k > last ? last : k] * 255) / top);
    } else if (fn === "SIGMOID") {
      g = Math.round(255 / (1 + Math.exp((-4 * (v - c)) / w)));
    } else if (fn === "LINEAR_EXACT") {
      const t = (v - c) / w + 0.5;
      g = t <= 0 ? 0 : t >= 1 ? 255 : Math.round(t * 255);
    } else {
      g = v <= lo ? 0 : v > hi ? 255 : Math.round(((v - (c - 0.5)) / Math.max(w - 1, 1) + 0.5) * 255);
    }
    if (frame.mono1) g = 255 - g;
    lut[i] = 0xff000000 | (g << 16) | (g << 8) | g;
  }
  if (lutCache.size > 16) lutCache.clear();
  lutCache.set(key, lut);
  return lut;
}

function renderGray(pane, frame) {
  const { img } = pane;
  if (img.width !== frame.cols || img.height !== frame.rows) {
    img.width = frame.cols;
    img.height = frame.rows;
  }
  const ctx = img.getContext("2d");
  if (frame.kind === "rgb") {
    ctx.drawImage(frame.bitmap, 0, 0);
    return;
  }
  const data = ctx.createImageData(frame.cols, frame.rows);
  const out = new Uint32Array(data.data.buffer);
  const lut = lutFor(frame);
  const px = frame.pixels;
  if (frame.kind === "i16") for (let i = 0; i < px.length; i++) out[i] = lut[px[i] + 32768];
  else for (let i = 0; i < px.length; i++) out[i] = lut[px[i]];
  ctx.putImageData(data, 0, 0);
}

// diverging heat map: 0 -> black, + -> red..yellow, - -> blue..cyan
function heat(t) {
  const a = Math.min(1, Math.abs(t));
  if (t >= 0) return [Math.round(255 * Math.min(1, 2 * a)), Math.round(255 * Math.max(0, 2 * a - 1)), 0];
  return [0, Math.round(255 * Math.max(0, 2 * a - 1)), Math.round(255 * Math.min(1, 2 * a))];
}
const HEAT = (() => {
  const lut = new Uint32Array(511);
  for (let i = 0; i < 511; i++) {
    const [r, g, b] = heat((i - 255) / 255);
    lut[i] = 0xff000000 | (b << 16) | (g << 8) | r;
  }
  return lut;
})();

function diffOf(a, b, kept = null) {
  // b - a in output units (HU for CT); max and RMS over the pixels the manifest measures too:
  // with `kept` ({low, high, padding} in the original's stored values, from /stack), the original's
  // padding and the values the series mapping clips are left out (drawn as 0, counted apart)
  const n = a.pixels.length;
  const d = new Float32Array(n);
  const lo = kept ? kept.low : -Infinity;
  const hi = kept ? kept.high : Infinity;
  const [pl, ph] = kept && kept.padding ? kept.padding : [1, 0];
  let max = 0;
  let sum2 = 0;
  let skipped = 0;
  for (let i = 0; i < n; i++) {
    const s = a.pixels[i];
    if (s < lo || s > hi || (s >= pl && s <= ph)) {
      skipped++;
      continue; // d[i] stays 0
    }
    const v = b.pixels[i] * b.slope + b.intercept - (s * a.slope + a.intercept);
    d[i] = v;
    const m = Math.abs(v);
    if (m > max) max = m;
    sum2 += v * v;
  }
  return { d, max, rms: n > skipped ? Math.sqrt(sum2 / (n - skipped)) : 0, skipped };
}

function diffRange(diff, manifestMax) {
  if (state.diffRange !== "auto") return +state.diffRange;
  // four times this slice's RMS error, at most the manifest's max error (clipped padding excluded)
  // or this slice's max: scaled to the max alone, a noisy preview's heatmap was nearly black (RMS
  // 50 HU under a bar of ±557); larger errors saturate, and the stats line gives the max
  const cap = manifestMax != null && manifestMax > 0 ? manifestMax : diff.max;
  return Math.max(1, Math.ceil(Math.min(cap, 4 * diff.rms)));
}

function renderDiff(pane, diff, a, range) {
  const { img } = pane;
  if (img.width !== a.cols || img.height !== a.rows) {
    img.width = a.cols;
    img.height = a.rows;
  }
  const ctx = img.getContext("2d");
  const data = ctx.createImageData(a.cols, a.rows);
  const out = new Uint32Array(data.data.buffer);
  const k = 255 / range;
  const d = diff.d;
  for (let i = 0; i < d.length; i++) {
    let j = Math.round(d[i] * k);
    if (j > 255) j = 255;
    else if (j < -255) j = -255;
    out[i] = HEAT[j + 255];
  }
  ctx.putImageData(data, 0, 0);
}

function drawColourbar(range, units) {
  const cb = $("#colourbar");
  const dpr = window.devicePixelRatio || 1;
  const w = cb.clientWidth || 84;
  const h = cb.clientHeight || 400;
  cb.width = Math.round(w * dpr);
  cb.height = Math.round(h * dpr);
  const ctx = cb.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = "#111418";
  ctx.fillRect(0, 0, w, h);
  const top = 50;
  const bot = h - 30;
  const x0 = 8;
  const bw = 18;
  for (let y = top; y <= bot; y++) {
    const t = 1 - (2 * (y - top)) / (bot - top);
    const [r, g, b] = heat(t);
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    ctx.fillRect(x0, y, bw, 1);
  }
  ctx.strokeStyle = "#9aa5b4";
  ctx.strokeRect(x0 - 0.5, top - 0.5, bw + 1, bot - top + 1);
  ctx.fillStyle = "#e6e9ee";
  ctx.font = "11px system-ui, sans-serif";
  ctx.textBaseline = "middle";
  for (const f of [1, 0.5, 0, -0.5, -1]) {
    const y = top + ((1 - f) / 2) * (bot - top);
    ctx.fillRect(x0 + bw, y, 4, 1);
    const v = f * range;
    ctx.fillText(`${v > 0 ? "+" : ""}${Number.isInteger(v) ? v : v.toFixed(1)}`, x0 + bw + 7, y);
  }
  ctx.textBaseline = "top";
  ctx.font = "bold 11px system-ui, sans-serif";
  ctx.fillText(`Δ ${units}`, x0, 4);
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillText("preset −", x0, 18);
  ctx.fillText("original", x0, 30);
  ctx.textBaseline = "bottom";
  ctx.fillText(`±${range} ${units}`, x0, h - 6);
}

function drawPane(pane) {
  const { canvas, img } = pane;
  const dpr = window.devicePixelRatio || 1;
  const cw = Math.max(1, Math.round(canvas.clientWidth * dpr));
  const ch = Math.max(1, Math.round(canvas.clientHeight * dpr));
  if (canvas.width !== cw || canvas.height !== ch) {
    canvas.width = cw;
    canvas.height = ch;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, cw, ch);
  if (!pane.imgKey) return;
  const s = Math.min(cw / img.width, ch / img.height) * state.view.zoom;
  ctx.imageSmoothingEnabled = state.view.zoom < 2; // zoomed in: show the real pixels
  ctx.setTransform(s, 0, 0, s, cw / 2 + (state.view.px - img.width / 2) * s, ch / 2 + (state.view.py - img.height / 2) * s);
  ctx.drawImage(img, 0, 0);
  const orig = panes.original;
  if (pane.kind === "preset" && state.mode === "swipe" && orig.imgKey && orig.img.width === img.width) {
    // swipe: the original, with the same zoom and pan, left of the divider
    const xs = Math.round(cw * state.swipe);
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.beginPath();
    ctx.rect(0, 0, xs, ch);
    ctx.clip();
    ctx.setTransform(s, 0, 0, s, cw / 2 + (state.view.px - img.width / 2) * s, ch / 2 + (state.view.py - img.height / 2) * s);
    ctx.drawImage(orig.img, 0, 0);
    ctx.restore();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#4fa3ff";
    ctx.fillRect(xs - 1, 0, 2, ch);
  }
}

function presetFrameFor(idx) {
  // the chosen preset if here, else the preview (progressive loading), else nothing
  const f = cached(state.preset, idx);
  if (f) return f;
  if (state.preset !== "preview") return cached("preview", idx);
  return null;
}

function presetLabel(name) {
  return name === "preview" ? "PREVIEW — not for diagnosis" : name === "mdc" ? ".MDC (same size as diagnostic)" : name.toUpperCase();
}

function units() {
  return state.stack && state.stack.modality === "CT" ? "HU" : "units";
}

function frameStats(f) {
  if (f.encoding === "rendered") return `${fmtBytes(f.bytes)} PNG of ${f.preset}${f.ts ? ` (${tsName(f.ts)})` : ""} · rendered on the server (not windowed here)`;
  if (f.encoding === "jpeg") return `${fmtBytes(f.bytes)} · ${tsName(f.ts)} · decoded in browser ${f.decodeMs.toFixed(0)} ms`;
  return `${fmtBytes(f.bytes)} deflated samples · stored as ${tsName(f.ts)}, ${fmtBytes(f.stored)}/frame, decoded on the server`;
}

function render() {
  const st = state.stack;
  if (!st || !state.window) return;
  const idx = state.slice;
  const inst = st.slices[idx].inst;
  const compare = state.mode === "compare";
  const swipe = state.mode === "swipe";
  const of = compare || swipe ? cached("original", idx) : null;
  const po = panes.original;
  if (of) {
    renderGray(po, of);
    po.imgKey = `original|${idx}`;
    po.label.textContent = "ORIGINAL";
    po.stats.textContent = frameStats(of);
    shown.original = { preset: "original", slice: idx, sop: of.sop };
  } else {
    po.imgKey = null;
    const why = failed.get(frameKey("original", idx));
    po.label.textContent = why ? `ORIGINAL · could not be loaded: ${why}` : "ORIGINAL · loading…";
    po.stats.textContent = "";
    shown.original = null;
  }
  // preset pane (the only one in single and swipe modes)
  const pf = presetFrameFor(idx);
  const pp = panes.preset;
  if (pf) {
    renderGray(pp, pf);
    pp.imgKey = `${pf.preset}|${idx}`;
    const waiting = pf.preset !== state.preset;
    const wantedWhy = waiting ? failed.get(frameKey(state.preset, idx)) : null;
    pp.label.textContent = presetLabel(pf.preset) + (!waiting ? "" : wantedWhy ? ` · ${state.preset} could not be loaded: ${wantedWhy}` : ` · loading ${state.preset}…`);
    pp.label.classList.toggle("preview", pf.preset === "preview");
    pp.stats.textContent = frameStats(pf);
    if (swipe) {
      pp.label.textContent = `ORIGINAL${of ? "" : " (loading…)"} ◀ | ▶ ${pp.label.textContent}`;
      pp.stats.textContent = `left: original · right: ${pp.stats.textContent}`;
    }
    if (!shown.preset || shown.preset.preset !== pf.preset || shown.preset.slice !== idx) {
      history.push({ slice: idx, preset: pf.preset, t: performance.now() });
    }
    shown.preset = { preset: pf.preset, slice: idx, sop: pf.sop, window: [...state.window] };
    if (!state.firstImage) {
      state.firstImage = { ms: performance.now() - state.t0, preset: pf.preset, bytes: pf.bytes };
      document.body.dataset.firstImage = "1";
    }
  } else {
    pp.imgKey = null;
    const why = failed.get(frameKey(state.preset, idx));
    pp.label.textContent = !available(state.preset, idx) ? `${state.preset}: not computed for this slice`
      : why ? `${presetLabel(state.preset)} · could not be loaded: ${why}` : `${presetLabel(state.preset)} · loading…`;
    pp.stats.textContent = "";
    shown.preset = null;
  }
  drawPane(pp);
  // original + difference
  if (compare) {
    drawPane(po);
    const pd = panes.diff;
    if (of && pf && of.rows === pf.rows && of.cols === pf.cols && of.kind !== "rgb" && pf.kind !== "rgb") {
      const diff = diffOf(of, pf, (st.measured || {})[pf.preset] || null);
      const info = inst.presets[pf.preset];
      const range = diffRange(diff, info ? info.max_error_hu : null);
      renderDiff(pd, diff, of, range);
      pd.imgKey = `diff|${pf.preset}|${idx}`;
      pd.label.textContent = `DIFFERENCE ${pf.preset} − original`;
      const left = diff.skipped ? `${diff.skipped} padding or clipped pixels left out, as in the manifest` : "all pixels";
      const over = diff.max > range ? ` · past ±${range}: full colour` : "";
      pd.stats.textContent = `max |Δ| ${fmt(diff.max)} ${units()} · RMS ${fmt(diff.rms, 2)} ${units()} (${left})${over}`;
      drawColourbar(range, units());
      shown.diff = { preset: pf.preset, slice: idx, range, max: diff.max, rms: diff.rms, skipped: diff.skipped };
    } else {
      pd.imgKey = null;
      const origWhy = failed.get(frameKey("original", idx));
      const colour = (of && of.kind === "rgb") || (pf && pf.kind === "rgb");
      pd.label.textContent = colour ? "DIFFERENCE · not drawn for colour images"
        : origWhy ? `DIFFERENCE · the original could not be loaded: ${origWhy}`
        : pf && !of ? "DIFFERENCE · waiting for the original…" : "DIFFERENCE · waiting for both images…";
      pd.stats.textContent = "";
      shown.diff = null;
    }
    drawPane(pd);
  }
  updateReadouts();
  // a screen reader hears what each canvas shows (its label and slice), not only "Preset image"
  for (const p of Object.values(panes)) {
    const text = p.label.textContent;
    p.canvas.setAttribute("aria-label", `${text || p.kind}, slice ${idx + 1} of ${st.slices.length}`);
  }
}

function redrawOnly() {
  // zoom/pan: no re-windowing needed
  for (const p of Object.values(panes)) if (state.mode === "compare" || p.kind === "preset") drawPane(p);
}

function updateReadouts() {
  const st = state.stack;
  const idx = state.slice;
  const { inst, frame } = st.slices[idx];
  const where = inst.frames > 1 ? ` (#${inst.number ?? "?"} frame ${frame})` : inst.number != null ? ` (#${inst.number})` : "";
  $("#slice-readout").textContent = `slice ${idx + 1} / ${st.slices.length}${where}`;
  $("#slider").value = String(idx);
  $("#slider").setAttribute("aria-valuetext", `slice ${idx + 1} of ${st.slices.length}`); // not the 0-based value
  const [c, w] = state.window;
  const pf = presetFrameFor(idx);
  const lutName = state.lut != null ? (state.windows.find((x) => x[4] === state.lut) || ["header VOI LUT"])[0] : null;
  $("#wl-readout").textContent =
    pf && pf.kind === "rgb"
      ? "rendered on the server: not windowed here"
      : lutName
        ? `VOI LUT: ${lutName}`
        : `C ${Math.round(c)} / W ${Math.round(w)} ${units()}${state.fn !== "LINEAR" ? ` ${state.fn.toLowerCase()}` : ""}`;
  const ti = state.firstImage;
  $("#timing").textContent = ti
    ? `first image ${ti.ms.toFixed(0)} ms (${ti.preset}, ${fmtBytes(ti.bytes)}) · ${fmtBytes(state.bytesTotal)} received`
    : "";
  const rows = [];
  const names = ["original", "preview", state.preset].filter((v, i, a) => a.indexOf(v) === i);
  for (const name of names) {
    const info = name === "original" ? null : inst.presets[name];
    if (name !== "original" && !info) continue;
    const f = cached(name, idx);
    const err = info && info.max_error_hu != null ? `${fmt(info.max_error_hu)} ${units()}` : name === "original" ? "0" : "–";
    const ts = info && info.transfer_syntax ? tsName(info.transfer_syntax) : f && f.ts ? tsName(f.ts) : info && info.live ? "live" : f ? "rendered PNG" : "";
    // a live preset has no manifest entry: its ratio is measured on the frame that arrived
    const raw = f && f.kind !== "rgb" ? f.rows * f.cols * (f.kind === "u8" ? 1 : 2) : 0;
    const coded = f ? (f.encoding === "jpeg" ? f.bytes : f.stored) : 0;
    const ratio = name === "original" ? "1:1" : info && info.passthrough ? "passed through unchanged"
      : info && info.live && raw && coded ? `${fmt(raw / coded)}:1 (this frame)`
      : info && info.ratio != null ? `${fmt(info.ratio)}:1` : "–";
    const how = !f ? "not loaded" : `${fmtBytes(f.bytes)} (${f.encoding === "jpeg" ? "JPEG" : f.encoding === "rendered" ? "PNG" : "deflate"})`;
    rows.push([
      String(idx + 1),
      PRESET_TITLES[name] || name,
      `${ts}${info && info.live ? " (encoded on request)" : ""}`,
      ratio,
      info && info.psnr != null ? `${fmt(info.psnr)} dB` : name === "original" ? "∞" : "–",
      err,
      how,
      f ? `${f.decodeMs.toFixed(0)} ms` : "",
    ]);
  }
  // cells as text: every value here comes from stored headers (a transfer syntax UID too)
  const body = $("#numbers tbody");
  body.replaceChildren(
    ...rows.map((cells) => {
      const tr = document.createElement("tr");
      for (const text of cells) tr.appendChild(document.createElement("td")).textContent = text;
      return tr;
    }),
  );
  document.body.dataset.slice = String(idx);
}

// ----------------------------------------------------------------------------- navigation
function request(idx) {
  const st = state.stack;
  if (!st) return;
  const again = () => {
    if (st !== state.stack) return;
    // a frame came: an error about frames (a server that was down) is over (it stayed red after a restart)
    if (state.statusIsError && state.frameError) {
      state.frameError = false;
      setStatus(state.seriesStatus || "");
    }
    if (idx === state.slice) render();
  };
  const failing = (preset) => (e) => {
    if (e instanceof Cancelled || st !== state.stack) return;
    // fetch's own TypeError ("Failed to fetch"): the server did not answer at all
    const why = e instanceof TypeError ? `server not reachable (${e.message})` : String(e.message || e);
    state.frameError = true;
    failed.set(frameKey(preset, idx, st), why);
    setStatus(why, true);
    if (idx === state.slice) render();
  };
  cancelPrefetch(false, idx);
  const p = state.preset;
  if (p !== "preview" && !cached(p, idx) && available("preview", idx)) getFrame("preview", idx, 0).then(again, failing("preview"));
  if (available(p, idx)) getFrame(p, idx, 1).then(again, failing(p));
  if (state.mode !== "single") getFrame("original", idx, 1).then(again, failing("original"));
  const n = st.slices.length;
  for (let d = 1; d <= PREFETCH; d++) {
    for (const j of [idx + d, idx - d]) {
      if (j < 0 || j >= n) continue;
      if (available(p, j)) getFrame(p, j, 10 + d).catch(() => {});
      if (state.mode !== "single") getFrame("original", j, 10 + d).catch(() => {});
    }
  }
}

function goTo(idx) {
  const st = state.stack;
  if (!st) return;
  const n = st.slices.length;
  state.slice = Math.max(0, Math.min(n - 1, idx));
  request(state.slice);
  render();
  syncUrl();
}

// the address follows what is shown (series, slice, preset, mode), so that a view can be shared or
// bookmarked (without the token: see TOKEN). Written once things
// settle: a cine or a scroll would call history.replaceState faster than chromium allows
let urlTimer = null;
function syncUrl() {
  clearTimeout(urlTimer);
  urlTimer = setTimeout(writeUrl, 400);
}

function writeUrl() {
  const st = state.stack;
  if (!st || !state.study || !state.series) return;
  const q = new URLSearchParams({ study: state.study, series: state.series, slice: String(state.slice + 1) });
  if (state.preset !== "diagnostic") q.set("preset", state.preset);
  if (state.mode !== "single") q.set("mode", state.mode);
  const url = `${location.pathname}?${q}${location.hash}`;
  if (url !== location.pathname + location.search + location.hash) window.history.replaceState(null, "", url);
}

function imageCount(n) {
  return `${n} ${String(n) === "1" ? "image" : "images"}`;
}

function setWindow(c, w) {
  state.window = [c, Math.max(1, w)];
  state.lut = null; // a window chosen or dragged replaces the header's VOI LUT
  document.querySelectorAll("#wl-buttons button").forEach((b) => b.setAttribute("aria-pressed", "false"));
  render();
}

function setPreset(name) {
  state.preset = name;
  $("#preset").value = name;
  goTo(state.slice);
}

function setMode(mode) {
  state.mode = mode;
  $("#mode").value = mode;
  $("#panes").className = mode === "swipe" ? "single" : mode;
  goTo(state.slice);
}

function toggleCine() {
  const btn = $("#cine");
  if (state.cine) {
    clearInterval(state.cine);
    state.cine = null;
    btn.setAttribute("aria-pressed", "false");
    btn.textContent = "▶ Cine";
    return;
  }
  btn.setAttribute("aria-pressed", "true");
  btn.textContent = "■ Stop";
  const step = () => {
    const n = state.stack ? state.stack.slices.length : 1;
    goTo((state.slice + 1) % n);
  };
  state.cine = setInterval(step, 1000 / +$("#fps").value);
}

function zoom(f) {
  state.view.zoom = Math.min(32, Math.max(0.25, state.view.zoom * f));
  redrawOnly();
}

function resetView() {
  state.view = { zoom: 1, px: 0, py: 0 };
  redrawOnly();
}

// ----------------------------------------------------------------------------- window presets
function windowPresets(st) {
  const list = [];
  // every pair the header gives (PS3.3 §C.11.2.1.2), named by its explanation when it has one
  // the header's VOI LUTs first (PS3.3 §C.11.2.1.1; the default, as /rendered and pydicom prefer them)
  const luts = st.voi_luts || [];
  luts.forEach((t, k) => list.push([t.explanation || (luts.length > 1 ? `Header LUT ${k + 1}` : "Header LUT"), null, null, null, k]));
  const n = st.windows.length;
  const fn = st.voi_function || "LINEAR";
  st.windows.forEach(([c, w, note], k) => list.push([note || (n > 1 ? `Header ${k + 1}` : "Header"), c, w, fn]));
  if (st.modality === "CT") list.push(...CT_WINDOWS);
  list.push(["Full range", null, null]);
  return list;
}

function fullRange() {
  // the original's values when it is here, its declared padding left out (PS3.3 C.7.5.1.1.2: not
  // image data; an outside audit, 2026-12-04: a padded mammogram's range reached its padding value
  // and a preview's JPEG overshoot); else the frame shown (the first to arrive)
  const original = cached("original", state.slice);
  const f = original || presetFrameFor(state.slice);
  if (!f || f.kind === "rgb") return [state.window[0], state.window[1]];
  const declared = original && state.stack ? Object.values(state.stack.measured || {}).find((m) => m && m.padding) : null;
  const [pl, ph] = declared ? declared.padding : [1, 0];
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < f.pixels.length; i++) {
    const v = f.pixels[i];
    if (v >= pl && v <= ph) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo > hi) return [state.window[0], state.window[1]]; // all padding
  const a = lo * f.slope + f.intercept;
  const b = hi * f.slope + f.intercept;
  return [(a + b) / 2, Math.max(1, Math.abs(b - a))];
}

function applyWindowPreset(i) {
  const w = state.windows[i];
  if (!w) return;
  if (w[4] != null) {
    state.lut = w[4];
    document.querySelectorAll("#wl-buttons button").forEach((b) => b.setAttribute("aria-pressed", "false"));
    render();
  } else {
    const [c, width] = w[1] == null ? fullRange() : [w[1], w[2]];
    state.fn = w[3] || "LINEAR";
    setWindow(c, width);
  }
  const btn = document.querySelectorAll("#wl-buttons button")[i];
  if (btn) btn.setAttribute("aria-pressed", "true");
}

function buildWindowButtons() {
  const box = $("#wl-buttons");
  box.innerHTML = "";
  state.windows.forEach(([name, c, w], i) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = name;
    const what = state.windows[i][4] != null ? "the header's VOI LUT" : c == null ? "min..max of the slice" : `C ${c} / W ${w}`;
    b.title = `${what} (key ${i + 1})`;
    b.setAttribute("aria-pressed", "false");
    b.addEventListener("click", () => applyWindowPreset(i));
    box.appendChild(b);
  });
}

// ----------------------------------------------------------------------------- study / series
async function loadStudies() {
  state.studies = await getJson(`${DICOMWEB}/studies?includefield=00081030,00080061,00201208`, "application/dicom+json");
  const ul = $("#studies");
  ul.innerHTML = "";
  for (const s of state.studies) {
    const uid = tagValue(s, "0020000D");
    const li = document.createElement("li");
    li.className = "study";
    li.dataset.uid = uid;
    const b = document.createElement("button");
    b.type = "button";
    const name = tagValue(s, "00100010") || "(no name)";
    const desc = tagValue(s, "00081030");
    const date = tagValue(s, "00080020");
    const mods = tagValues(s, "00080061").join("/");
    b.innerHTML = `<bdi></bdi><span class="meta"></span>`;
    b.firstChild.textContent = `${name}${desc ? ` — ${desc}` : ""}`;
    b.lastChild.textContent = [date, mods, tagValue(s, "00201208") && imageCount(tagValue(s, "00201208"))].filter(Boolean).join(" · ");
    b.addEventListener("click", () => openStudy(uid).catch(showError));
    li.appendChild(b);
    const sl = document.createElement("ul");
    sl.className = "series-list list";
    li.appendChild(sl);
    ul.appendChild(li);
  }
  if (!state.stack && !state.errors.length) setStatus(`${state.studies.length} studies`);
}

const NON_IMAGE = new Set(["SR", "KO", "PR", "RTSTRUCT", "RTPLAN", "RTDOSE", "REG", "SEG", "DOC"]);

async function openStudy(uid, seriesUid = null) {
  if (!isUid(uid)) throw new Error(`study ${JSON.stringify(String(uid).slice(0, 80))} is not a DICOM UID`);
  if (seriesUid != null && !isUid(seriesUid)) throw new Error(`series ${JSON.stringify(String(seriesUid).slice(0, 80))} is not a DICOM UID`);
  state.study = uid;
  const asked = getJson(`${DICOMWEB}/studies/${enc(uid)}/series`, "application/dicom+json");
  // a series named in the URL opens at once, while the lists load
  const opening = seriesUid ? openSeries(uid, seriesUid) : null;
  if (opening) opening.catch(() => {}); // awaited below; not an unhandled rejection if the list fails first
  const series = await asked;
  if (state.study !== uid) return; // another study was clicked meanwhile
  series.sort((a, b) => (+tagValue(a, "00200011") || 0) - (+tagValue(b, "00200011") || 0));
  await state.listing;
  if (state.study !== uid) return;
  fillSeriesList(uid, series);
  if (opening) return opening;
  if (!series.length) {
    setStatus(`study ${uid}: no series`, true);
    return;
  }
  const images = series.filter((s) => !NON_IMAGE.has(tagValue(s, "00080060")));
  const pool = images.length ? images : series;
  const pick = pool.reduce((a, b) => ((+tagValue(b, "00201209") || 0) > (+tagValue(a, "00201209") || 0) ? b : a));
  await openSeries(uid, tagValue(pick, "0020000E"));
}

function fillSeriesList(uid, series) {
  document.querySelectorAll(".study > button").forEach((b) => b.setAttribute("aria-current", String(b.parentElement.dataset.uid === uid)));
  const li = [...document.querySelectorAll(".study")].find((e) => e.dataset.uid === uid);
  if (!li) return;
  const sl = li.querySelector(".series-list");
  sl.innerHTML = "";
  for (const s of series) {
    const suid = tagValue(s, "0020000E");
    const item = document.createElement("li");
    item.className = "series";
    item.dataset.uid = suid;
    const b = document.createElement("button");
    b.type = "button";
    b.innerHTML = `<bdi></bdi><span class="meta"></span>`;
    b.firstChild.textContent = `${tagValue(s, "00080060")} ${tagValue(s, "00200011")} ${tagValue(s, "0008103E")}`.trim();
    b.lastChild.textContent = imageCount(tagValue(s, "00201209") || "?");
    b.addEventListener("click", () => openSeries(uid, suid).catch(showError));
    b.setAttribute("aria-current", String(suid === state.series));
    item.appendChild(b);
    sl.appendChild(item);
  }
}

async function openSeries(study, series) {
  const ticket = ++state.opening;
  setStatus("loading series…");
  const st = await getJson(`${API}/studies/${enc(study)}/series/${enc(series)}/stack`);
  if (ticket !== state.opening) return; // a later click won: this answer is not shown
  cancelPrefetch(true);
  inflight.clear(); // what is still on its way belongs to the previous series: never reused
  cache.clear();
  failed.clear();
  state.study = study;
  document.querySelectorAll(".study > button").forEach((b) => b.setAttribute("aria-current", String(b.parentElement.dataset.uid === study)));
  // one slice per frame: multi-frame instances (enhanced CT/MR) scroll through their frames
  st.slices = st.instances.flatMap((inst) => Array.from({ length: Math.max(1, inst.frames) }, (_, k) => ({ inst, frame: k + 1 })));
  state.stack = st;
  state.series = series;
  document.querySelectorAll(".series > button").forEach((b) => b.setAttribute("aria-current", String(b.parentElement.dataset.uid === series)));
  if (!st.rows || !st.columns) {
    // a report, a dose record, a key-object note: nothing to draw, said so (not "loading…" forever)
    state.stack = null;
    for (const pane of Object.values(panes)) {
      pane.imgKey = null;
      pane.label.textContent = "";
      pane.stats.textContent = "";
      drawPane(pane);
    }
    const what = `${st.modality || "this"} series${st.description ? ` "${st.description}"` : ""}`;
    panes.preset.label.textContent = `${what}: no image to show (no pixel data); its files are in the study's archive`;
    $("#numbers tbody").replaceChildren();
    setStatus(`${what} · ${st.instances.length} object${st.instances.length === 1 ? "" : "s"} without pixel data`);
    document.body.dataset.ready = "1";
    return;
  }
  // presets offered: those computed for at least one instance, and the original
  const names = st.presets.filter((p) => p === "original" || st.instances.some((i) => i.presets[p]));
  const sel = $("#preset");
  sel.innerHTML = "";
  for (const p of names) {
    const o = document.createElement("option");
    o.value = p;
    o.textContent = PRESET_TITLES[p] || p;
    sel.appendChild(o);
  }
  const wanted = params.get("preset");
  params.delete("preset"); // a link's preset and slice are for the series it opens, not every later one
  state.preset = names.includes(wanted) ? wanted : names.includes("diagnostic") ? "diagnostic" : names.find((n) => n !== "original") || "original";
  sel.value = state.preset;
  state.windows = windowPresets(st);
  buildWindowButtons();
  const first = state.windows[0];
  const headerWindow = state.windows.find((w) => w[1] != null && w[4] == null);
  state.lut = first[4] != null ? first[4] : null;
  state.fn = (headerWindow && headerWindow[3]) || "LINEAR";
  // with a VOI LUT first, the header's window is where a drag starts (else the full range, below)
  state.window = headerWindow && (first[4] != null || first === headerWindow) ? [headerWindow[1], headerWindow[2]] : null;
  $("#slider").max = String(st.slices.length - 1);
  state.seriesStatus = `${st.modality} ${st.description} · ${st.slices.length} slices · ${st.columns}x${st.rows}`;
  setStatus(state.seriesStatus);
  state.slice = Math.min(st.slices.length - 1, Math.floor(st.slices.length / 2));
  const startSlice = +params.get("slice");
  params.delete("slice");
  if (startSlice >= 1) state.slice = Math.min(st.slices.length - 1, startSlice - 1);
  if (!state.window) {
    // no header window, not CT: take the full range of the first image that arrives
    state.window = [0, 1];
    const idx = state.slice;
    const p = available("preview", idx) ? "preview" : state.preset;
    try {
      await getFrame(p, idx, 0);
      if (ticket !== state.opening) return;
      const keep = state.lut;
      applyWindowPreset(state.windows.length - 1); // the full range: where a drag starts
      if (keep != null) applyWindowPreset(keep); // the VOI LUTs come first in the list
    } catch (e) {
      if (ticket !== state.opening) return;
      setStatus(String(e.message || e), true);
    }
  } else {
    document.querySelector("#wl-buttons button").setAttribute("aria-pressed", "true");
  }
  document.body.dataset.ready = "1";
  goTo(state.slice);
}

// ----------------------------------------------------------------------------- input
function bindInput() {
  $("#preset").addEventListener("change", (e) => setPreset(e.target.value));
  $("#mode").addEventListener("change", (e) => setMode(e.target.value));
  $("#slider").addEventListener("input", (e) => goTo(+e.target.value));
  $("#prev").addEventListener("click", () => goTo(state.slice - 1));
  $("#next").addEventListener("click", () => goTo(state.slice + 1));
  $("#cine").addEventListener("click", toggleCine);
  $("#fps").addEventListener("change", () => {
    if (state.cine) {
      toggleCine();
      toggleCine();
    }
  });
  $("#reset").addEventListener("click", resetView);
  $("#diff-range").addEventListener("change", (e) => {
    state.diffRange = e.target.value;
    render();
  });
  const help = $("#help");
  const toggleHelp = () => {
    help.hidden = !help.hidden;
    $("#help-btn").setAttribute("aria-expanded", String(!help.hidden));
  };
  $("#help-btn").addEventListener("click", toggleHelp);

  let wheelAcc = 0;
  for (const pane of Object.values(panes)) {
    const cv = pane.canvas;
    cv.addEventListener(
      "wheel",
      (e) => {
        e.preventDefault();
        if (e.ctrlKey) {
          zoom(e.deltaY < 0 ? 1.15 : 1 / 1.15);
          return;
        }
        // one slice per wheel notch; small trackpad deltas add up to one
        wheelAcc += e.deltaMode === 1 ? e.deltaY * 40 : e.deltaY;
        if (Math.abs(wheelAcc) >= 40) {
          goTo(state.slice + Math.sign(wheelAcc));
          wheelAcc = 0;
        }
      },
      { passive: false },
    );
    cv.addEventListener("contextmenu", (e) => e.preventDefault());
    cv.addEventListener("dblclick", resetView);
    // touch: one finger windows (as the mouse's left button), two fingers pinch to zoom and move
    // together to pan; the second finger undoes what the first one's start did to the window
    const touches = new Map();
    let endDrag = null;
    const pinchMove = (ev) => {
      if (!touches.has(ev.pointerId)) return;
      touches.set(ev.pointerId, { x: ev.clientX, y: ev.clientY });
      if (!pinch) return;
      const [a, b] = [...touches.values()];
      const dist = Math.hypot(a.x - b.x, a.y - b.y);
      const mx = (a.x + b.x) / 2;
      const my = (a.y + b.y) / 2;
      state.view.zoom = Math.min(32, Math.max(0.25, pinch.zoom * (dist / pinch.dist)));
      const s = Math.min(cv.clientWidth / pane.img.width, cv.clientHeight / pane.img.height) * state.view.zoom;
      state.view.px = pinch.px + (mx - pinch.mx) / s;
      state.view.py = pinch.py + (my - pinch.my) / s;
      redrawOnly();
    };
    let pinch = null;
    const touchEnd = (ev) => {
      touches.delete(ev.pointerId);
      if (touches.size < 2) pinch = null;
    };
    cv.addEventListener("pointermove", pinchMove);
    cv.addEventListener("pointerup", touchEnd);
    cv.addEventListener("pointercancel", touchEnd);
    cv.addEventListener("pointerdown", (e) => {
      if (!state.window) return;
      if (e.pointerType === "touch") {
        touches.set(e.pointerId, { x: e.clientX, y: e.clientY });
        if (touches.size >= 2) {
          cv.setPointerCapture(e.pointerId);
          if (endDrag) endDrag(true);
          const [a, b] = [...touches.values()];
          pinch = {
            dist: Math.max(1, Math.hypot(a.x - b.x, a.y - b.y)), mx: (a.x + b.x) / 2, my: (a.y + b.y) / 2,
            zoom: state.view.zoom, px: state.view.px, py: state.view.py,
          };
          return;
        }
      }
      cv.setPointerCapture(e.pointerId);
      const rect = cv.getBoundingClientRect();
      const divider = pane.kind === "preset" && state.mode === "swipe" && Math.abs(e.clientX - rect.left - rect.width * state.swipe) < 12;
      if (divider) {
        const drag = (ev) => {
          state.swipe = Math.min(1, Math.max(0, (ev.clientX - rect.left) / rect.width));
          redrawOnly();
        };
        const stop = () => {
          cv.removeEventListener("pointermove", drag);
          cv.removeEventListener("pointerup", stop);
          cv.removeEventListener("pointercancel", stop);
        };
        cv.addEventListener("pointermove", drag);
        cv.addEventListener("pointerup", stop);
        cv.addEventListener("pointercancel", stop);
        return;
      }
      const pan = e.button === 2 || e.button === 1 || e.shiftKey;
      const start = { x: e.clientX, y: e.clientY, c: state.window[0], w: state.window[1], px: state.view.px, py: state.view.py };
      const img = pane.img;
      let moved = false;
      const move = (ev) => {
        const dx = ev.clientX - start.x;
        const dy = ev.clientY - start.y;
        if (pan) {
          const s = Math.min(cv.clientWidth / img.width, cv.clientHeight / img.height) * state.view.zoom;
          state.view.px = start.px + dx / s;
          state.view.py = start.py + dy / s;
          redrawOnly();
        } else {
          const k = Math.max(0.5, start.w / 400);
          moved = true;
          setWindow(start.c + dy * k, start.w + dx * k);
        }
      };
      const up = (undo) => {
        cv.removeEventListener("pointermove", move);
        cv.removeEventListener("pointerup", up);
        cv.removeEventListener("pointercancel", up);
        if (undo === true && moved) setWindow(start.c, start.w); // a pinch began: the window as it was
        endDrag = null;
      };
      endDrag = up;
      cv.addEventListener("pointermove", move);
      cv.addEventListener("pointerup", up);
      cv.addEventListener("pointercancel", up);
    });
  }

  document.addEventListener("keydown", (e) => {
    const t = e.target;
    if (t && (t.tagName === "SELECT" || (t.tagName === "INPUT" && t.type !== "range"))) return;
    if (t && t.tagName === "INPUT" && t.type === "range" && e.key.startsWith("Arrow")) return; // the slider moves itself
    if (e.altKey || e.metaKey || (e.ctrlKey && e.key !== "0")) return;
    const panStep = 20 / state.view.zoom;
    let handled = true;
    switch (e.key) {
      case "ArrowUp":
      case "ArrowLeft":
        if (e.shiftKey) {
          if (e.key === "ArrowUp") state.view.py -= panStep;
          else state.view.px -= panStep;
          redrawOnly();
        } else goTo(state.slice - 1);
        break;
      case "ArrowDown":
      case "ArrowRight":
        if (e.shiftKey) {
          if (e.key === "ArrowDown") state.view.py += panStep;
          else state.view.px += panStep;
          redrawOnly();
        } else goTo(state.slice + 1);
        break;
      case "PageUp":
        goTo(state.slice - 10);
        break;
      case "PageDown":
        goTo(state.slice + 10);
        break;
      case "Home":
        goTo(0);
        break;
      case "End":
        goTo(Infinity);
        break;
      case " ":
        if (t && t.tagName === "BUTTON") return;
        toggleCine();
        break;
      case "c":
        setMode(state.mode === "compare" ? "single" : "compare");
        break;
      case "s":
        setMode(state.mode === "swipe" ? "single" : "swipe");
        break;
      case "[":
      case "]":
        if (state.mode !== "swipe") setMode("swipe");
        state.swipe = Math.min(1, Math.max(0, Math.round((state.swipe + (e.key === "]" ? 0.05 : -0.05)) * 20) / 20));
        redrawOnly();
        break;
      case "p": {
        const opts = [...$("#preset").options].map((o) => o.value);
        if (opts.length) setPreset(opts[(opts.indexOf(state.preset) + 1) % opts.length]);
        break;
      }
      case "+":
      case "=":
        zoom(1.25);
        break;
      case "-":
        zoom(1 / 1.25);
        break;
      case "0":
        resetView();
        break;
      case "?":
        toggleHelp();
        break;
      case "Escape":
        if (!help.hidden) toggleHelp();
        else handled = false;
        break;
      default:
        if (/^[1-9]$/.test(e.key)) applyWindowPreset(+e.key - 1);
        else handled = false;
    }
    if (handled) e.preventDefault();
  });

  new ResizeObserver(() => {
    if (state.stack && state.window) render();
  }).observe($("#panes"));
}

// ----------------------------------------------------------------------------- start
async function main() {
  for (let i = 0; i < WORKERS; i++) worker(); // start the decoders while the lists load
  bindInput();
  const mode = params.get("mode");
  if (mode === "compare" || mode === "swipe") setMode(mode);
  try {
    state.listing = loadStudies();
    let study = params.get("study");
    if (study) {
      await Promise.all([state.listing, openStudy(study, params.get("series"))]); // in parallel
      return;
    }
    await state.listing;
    study = state.studies.length ? tagValue(state.studies[0], "0020000D") : null;
    if (!study) {
      setStatus("no studies in the store: ingest some with `medcodec ingest`");
      return;
    }
    await openStudy(study);
  } catch (e) {
    setStatus(String(e.message || e), true);
  }
}

main();
