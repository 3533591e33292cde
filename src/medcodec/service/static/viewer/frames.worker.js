// Fetches and decodes frames off the page's thread, so scrolling and cine never wait for a decode.
// Message in: {id, url, headers}. Message out: {id, ok, headers, pixels (transferred), kind, bytes, fetchMs,
// decodeMs} or {id, ok: false, status, error}.
import { decodeJpeg } from "./jpeg.js";

async function inflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function errorText(r) {
  try {
    const j = await r.json();
    return `${r.status}: ${j.detail || j.error || JSON.stringify(j)}`;
  } catch {
    return `${r.status} ${r.statusText}`;
  }
}

self.onmessage = async (event) => {
  const { id, url, headers: sent } = event.data;
  try {
    const t0 = performance.now();
    const r = await fetch(url, { headers: sent || {} });
    if (!r.ok) {
      self.postMessage({ id, ok: false, status: r.status, error: await errorText(r) });
      return;
    }
    const body = new Uint8Array(await r.arrayBuffer());
    const t1 = performance.now();
    const headers = {};
    for (const [k, v] of r.headers) headers[k.toLowerCase()] = v;
    const rows = +headers["x-rows"];
    const cols = +headers["x-columns"];
    let pixels;
    let kind;
    if (headers["x-encoding"] === "jpeg") {
      const img = decodeJpeg(body);
      if (img.width !== cols || img.height !== rows) {
        throw new Error(`JPEG is ${img.width}x${img.height}, the header says ${cols}x${rows}`);
      }
      pixels = img.pixels;
      kind = img.bits > 8 ? "u16" : "u8";
    } else {
      const raw = await inflate(body);
      const type = headers["x-sample-type"];
      const want = rows * cols * (type === "uint8" ? 1 : 2);
      if (raw.length < want) throw new Error(`${raw.length} bytes of samples, ${want} expected`);
      if (type === "int16") [pixels, kind] = [new Int16Array(raw.buffer, 0, rows * cols), "i16"];
      else if (type === "uint16") [pixels, kind] = [new Uint16Array(raw.buffer, 0, rows * cols), "u16"];
      else [pixels, kind] = [new Uint8Array(raw.buffer, 0, rows * cols), "u8"];
    }
    const t2 = performance.now();
    self.postMessage(
      { id, ok: true, headers, pixels, kind, bytes: body.length, fetchMs: t1 - t0, decodeMs: t2 - t1 },
      [pixels.buffer],
    );
  } catch (e) {
    // fetch's own TypeError: no answer at all (the server stopped, the network gone), said so
    const unreachable = e instanceof TypeError && /fetch|network/i.test(e.message || "");
    self.postMessage({ id, ok: false, status: 0, error: unreachable ? `server not reachable (${e.message})` : String((e && e.message) || e) });
  }
};
