// ISO/IEC 10918-1 (ITU-T T.81) decoder for one grayscale image, in the browser.
//
// What it reads: sequential DCT-based Huffman streams, SOF0 (baseline, P=8) and SOF1 (extended,
// P=8 or 12), one component (whatever its sampling factors: a one-component scan is
// non-interleaved, T.81 §A.2.2), DQT with Pq=0 or 1 (§B.2.4.1), any DHT (§B.2.4.2), DRI and
// RSTm markers (§B.2.4.4, §F.1.2.3), APPn/COM skipped, fill bytes before markers.
// Anything else (progressive, lossless, arithmetic, colour) throws a JpegError naming it, so the
// viewer can ask the server for decoded samples instead.
//
// Output: Uint16Array (P=12, 0..4095) or Uint8Array (P=8), rows x cols, row-major: the real
// sample values, so the viewer windows the full 12-bit range itself. The inverse DCT is the
// float64 orthonormal one (T.81 §A.3.3), like medcodec's own decoder; integer-IDCT decoders
// (libjpeg) may differ by 1. tests/service/test_viewer.py compares it with the server's decode.

export class JpegError extends Error {}

const ZIGZAG = new Uint8Array([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21,
  28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61,
  54, 47, 55, 62, 63,
]);

// C[x*8+u] = c(u)/2 * cos((2x+1) u pi / 16), T.81 §A.3.3
const COS = (() => {
  const t = new Float64Array(64);
  for (let x = 0; x < 8; x++) {
    for (let u = 0; u < 8; u++) {
      t[x * 8 + u] = (u === 0 ? Math.SQRT1_2 : 1) * 0.5 * Math.cos(((2 * x + 1) * u * Math.PI) / 16);
    }
  }
  return t;
})();

// Huffman table from BITS and HUFFVAL (T.81 §C.2, decoding procedure §F.2.2.3).
function buildHuffman(bits, huffval, where) {
  const maxcode = new Int32Array(18).fill(-1);
  const valptr = new Int32Array(17);
  const mincode = new Int32Array(17);
  let code = 0;
  let k = 0;
  for (let l = 1; l <= 16; l++) {
    const n = bits[l - 1];
    if (n) {
      valptr[l] = k;
      mincode[l] = code;
      code += n;
      k += n;
      maxcode[l] = code - 1;
      if (code > 1 << l) throw new JpegError(`${where}: BITS describe more codes than fit in ${l} bits (T.81 §C.2)`);
    }
    code <<= 1;
  }
  maxcode[17] = 0x7fffffff;
  return { maxcode, valptr, mincode, huffval };
}

function u16(buf, pos) {
  if (pos + 2 > buf.length) throw new JpegError(`truncated at byte ${pos}`);
  return (buf[pos] << 8) | buf[pos + 1];
}

// Parse the markers up to and including SOS. Returns the frame description and where the
// entropy-coded data starts.
export function parseJpeg(buf) {
  if (buf.length < 4 || buf[0] !== 0xff || buf[1] !== 0xd8) throw new JpegError("not a JPEG stream: no SOI at byte 0");
  const qt = [];
  const dc = [];
  const ac = [];
  let frame = null;
  let ri = 0;
  let pos = 2;
  for (;;) {
    if (pos >= buf.length) throw new JpegError(`truncated before SOS at byte ${pos}`);
    if (buf[pos] !== 0xff) throw new JpegError(`byte ${pos}: marker expected, found 0x${buf[pos].toString(16)}`);
    while (buf[pos] === 0xff) pos++; // fill bytes (T.81 §B.1.1.2)
    const m = buf[pos++];
    const len = u16(buf, pos);
    const seg = pos + 2;
    const end = pos + len;
    if (len < 2 || end > buf.length) throw new JpegError(`marker 0xFF${m.toString(16)} at ${pos - 2}: length ${len} runs past the data`);
    if (m === 0xdb) { // DQT §B.2.4.1
      let p = seg;
      while (p < end) {
        const pq = buf[p] >> 4;
        const tq = buf[p] & 15;
        p++;
        if (pq > 1 || tq > 3) throw new JpegError(`DQT at ${pos - 2}: Pq=${pq} Tq=${tq} invalid (T.81 §B.2.4.1)`);
        const t = new Float64Array(64);
        for (let i = 0; i < 64; i++) {
          t[ZIGZAG[i]] = pq ? u16(buf, p + 2 * i) : buf[p + i];
        }
        p += pq ? 128 : 64;
        qt[tq] = t;
      }
    } else if (m === 0xc4) { // DHT §B.2.4.2
      let p = seg;
      while (p < end) {
        const tc = buf[p] >> 4;
        const th = buf[p] & 15;
        const bits = buf.subarray(p + 1, p + 17);
        let total = 0;
        for (let i = 0; i < 16; i++) total += bits[i];
        const huffval = buf.slice(p + 17, p + 17 + total);
        if (tc > 1 || th > 3 || huffval.length !== total) throw new JpegError(`DHT at ${pos - 2}: invalid table (T.81 §B.2.4.2)`);
        (tc ? ac : dc)[th] = buildHuffman(bits, huffval, `DHT at ${pos - 2}`);
        p += 17 + total;
      }
    } else if (m === 0xdd) { // DRI §B.2.4.4
      ri = u16(buf, seg);
    } else if (m === 0xc0 || m === 0xc1) { // SOF0 / SOF1 §B.2.2
      const P = buf[seg];
      const Y = u16(buf, seg + 1);
      const X = u16(buf, seg + 3);
      const nf = buf[seg + 5];
      if (nf !== 1) throw new JpegError(`SOF: ${nf} components; only grayscale (Nf=1) is decoded here`);
      if (P !== 8 && P !== 12) throw new JpegError(`SOF: sample precision P=${P}, expected 8 or 12 (T.81 §B.2.2)`);
      if (P === 12 && m === 0xc0) throw new JpegError("SOF0 with P=12 (baseline is 8-bit, T.81 §B.2.2)");
      if (!Y || !X) throw new JpegError("SOF: zero rows or columns (DNL is not supported)");
      frame = { P, Y, X, id: buf[seg + 6], tq: buf[seg + 8] & 3 };
    } else if (m >= 0xc2 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      throw new JpegError(`SOF${m - 0xc0}: only sequential Huffman SOF0/SOF1 are decoded here`);
    } else if (m === 0xda) { // SOS §B.2.3
      if (!frame) throw new JpegError("SOS before SOF");
      const ns = buf[seg];
      if (ns !== 1) throw new JpegError(`SOS: Ns=${ns}, expected 1`);
      const td = buf[seg + 2] >> 4;
      const ta = buf[seg + 2] & 15;
      const q = qt[frame.tq];
      if (!q || !dc[td] || !ac[ta]) throw new JpegError("SOS: a quantization or Huffman table it uses is not defined");
      return { ...frame, ri, q, dc: dc[td], ac: ac[ta], start: end };
    } else if (m === 0xd9) {
      throw new JpegError("EOI before SOS");
    }
    pos = end;
  }
}

// Decode the stream; returns { width, height, bits, pixels }.
export function decodeJpeg(bytes) {
  const buf = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const f = parseJpeg(buf);
  const { P, Y, X, q, ri } = f;
  const bw = Math.ceil(X / 8);
  const bh = Math.ceil(Y / 8);
  const nblocks = bw * bh;
  const out = P === 12 ? new Uint16Array(X * Y) : new Uint8Array(X * Y);
  const shift = 1 << (P - 1);
  const maxv = (1 << P) - 1;

  // bit reader over entropy-coded data with 0xFF00 unstuffing; stops at any marker (§F.1.2.3)
  let pos = f.start;
  let acc = 0;
  let nbits = 0;
  let marker = false;
  let fake = 0; // zero bytes fed past a marker or the end: a valid scan never consumes them
  function fill() {
    while (nbits <= 24) {
      let b = 0;
      if (!marker && pos < buf.length) {
        b = buf[pos];
        if (b === 0xff) {
          const nxt = buf[pos + 1];
          if (nxt === 0x00) pos += 2;
          else { marker = true; b = 0; fake++; }
        } else pos++;
      } else fake++;
      acc = ((acc << 8) | b) >>> 0;
      nbits += 8;
    }
  }
  function bit() {
    if (nbits === 0) fill();
    nbits--;
    return (acc >>> nbits) & 1;
  }
  function receive(s) {
    let v = 0;
    for (let i = 0; i < s; i++) v = (v << 1) | bit();
    return v;
  }
  function extend(v, t) { // §F.2.2.1
    return t === 0 ? 0 : v < 1 << (t - 1) ? v - (1 << t) + 1 : v;
  }
  function decodeSym(h) { // §F.2.2.3
    let code = bit();
    let l = 1;
    while (code > h.maxcode[l]) {
      code = (code << 1) | bit();
      l++;
      if (l > 16) throw new JpegError(`bad Huffman code near byte ${pos} (T.81 §F.2.2.3)`);
    }
    return h.huffval[h.valptr[l] + code - h.mincode[l]];
  }
  function checkEnd(where) {
    if (fake * 8 > nbits) {
      throw new JpegError(`entropy-coded data ends before ${where} (truncated or damaged stream, T.81 §F.1.2.3)`);
    }
  }
  function restart(block) { // §F.1.2.3: byte-align, expect RSTm
    checkEnd(`the restart marker before block ${block}`);
    fake = 0;
    nbits = 0;
    acc = 0;
    if (!marker) { // skip padding 1-bits to the marker
      while (pos < buf.length && !(buf[pos] === 0xff && buf[pos + 1] !== 0)) pos++;
    }
    while (buf[pos] === 0xff && buf[pos + 1] === 0xff) pos++;
    if (buf[pos] === 0xff && buf[pos + 1] >= 0xd0 && buf[pos + 1] <= 0xd7) pos += 2;
    else throw new JpegError(`RST marker expected at byte ${pos} (Ri=${ri}, T.81 §B.2.4.4)`);
    marker = false;
  }

  const zz = new Float64Array(64);
  const tmp = new Float64Array(64);
  let pred = 0;
  for (let b = 0; b < nblocks; b++) {
    if (ri && b && b % ri === 0) { restart(b); pred = 0; }
    zz.fill(0);
    const t = decodeSym(f.dc);
    if (t > 16) throw new JpegError(`DC size category ${t} > 16 near byte ${pos}`);
    pred += extend(receive(t), t);
    zz[0] = pred * q[0];
    let acs = 0; // AC coefficients decoded (a block with none is a constant)
    for (let k = 1; k < 64;) {
      const rs = decodeSym(f.ac);
      const r = rs >> 4;
      const s = rs & 15;
      if (s === 0) {
        if (r !== 15) break; // EOB
        k += 16; // ZRL
        continue;
      }
      k += r;
      if (k > 63) throw new JpegError(`AC coefficient index past 63 near byte ${pos}`);
      const z = ZIGZAG[k];
      zz[z] = extend(receive(s), s) * q[z];
      acs++;
      k++;
    }
    const by = (b / bw) | 0;
    const bx = b - by * bw;
    if (!acs) { // DC only: exactly DC * step / 8 (the float 1/sqrt(8)^2 is a hair over 1/8, which put a
      // negative DC's exact half below it), rounded half up as libjpeg-turbo, DCMTK, GDCM and the server do
      let val = Math.round(zz[0] / 8) + shift;
      if (val < 0) val = 0;
      else if (val > maxv) val = maxv;
      for (let y = 0; y < 8 && by * 8 + y < Y; y++) {
        const row = by * 8 + y;
        for (let x = 0; x < 8 && bx * 8 + x < X; x++) out[row * X + bx * 8 + x] = val;
      }
      continue;
    }
    // separable inverse DCT: rows then columns (zz is in natural order, zz[v*8+u])
    for (let v = 0; v < 8; v++) {
      const o = v * 8;
      let ac = 0;
      for (let u = 1; u < 8; u++) ac |= zz[o + u] !== 0;
      if (!ac) { // most rows of a quantized block: DC only (or nothing), a constant
        const c = COS[0] * zz[o];
        for (let x = 0; x < 8; x++) tmp[o + x] = c;
        continue;
      }
      for (let x = 0; x < 8; x++) {
        let s = 0;
        for (let u = 0; u < 8; u++) s += COS[x * 8 + u] * zz[o + u];
        tmp[o + x] = s;
      }
    }
    for (let y = 0; y < 8; y++) {
      const row = by * 8 + y;
      if (row >= Y) break;
      for (let x = 0; x < 8; x++) {
        const col = bx * 8 + x;
        if (col >= X) break;
        let s = 0;
        for (let v = 0; v < 8; v++) s += COS[y * 8 + v] * tmp[v * 8 + x];
        let val = Math.round(s) + shift;
        if (val < 0) val = 0;
        else if (val > maxv) val = maxv;
        out[row * X + col] = val;
      }
    }
  }
  checkEnd(`block ${nblocks}`);
  return { width: X, height: Y, bits: P, pixels: out };
}
