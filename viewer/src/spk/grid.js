/**
 * Grid scenes (`meta.kind = "sog-grid"`, docs/spk-format.md §6; Self-Organizing Gaussians): every
 * attribute is an image of the H×W grid the Gaussians were sorted into.
 *
 * A port of `splatpack.codecs.grid.read_grid_scene`, with the same checks (meta, codecs,
 * shapes and dtypes from the headers before decoding, `grid.empty` strictly increasing, samples
 * within their bits, labels within the palette, finite values). Layout (`_Layout` in Python):
 * P planes of c channels are tiled row-major into a mosaic of ⌈√P′⌉ columns; `webp` with more than
 * 8 bits stores high bytes (planes 0..P−1) then low bytes; lossy `jxl` stores each channel as its
 * own grey plane (p·c + ch). Occupied cells in raster order are Gaussians 0..N−1; for channel ch
 * with b bits, t̂ = lo + q·((hi − lo)/(2^b − 1)) in float32.
 */

const f32 = Math.fround;
export const GRID_KIND = 'sog-grid';
const GRID_CODECS = ['jxl', 'png', 'webp', 'ans'];
const ATTRIBUTES = ['means', 'sh0', 'shN', 'scales', 'quats', 'opacities'];
const OPACITY_SPACES = ['logit', 'alpha'];
const MAX_SPARE = 16;
const MAX_RVQ_STAGES = 8;
const ALPHA_EPS = f32(1e-6);
const ALPHA_MAX = f32(1 - 1e-6);

/** Python's `_Layout`: how [P, H, W, c] planes of `bits`-bit integers are stored as one image. */
class Layout {
  constructor(codec, bits, distance = 0) {
    this.codec = codec;
    this.bits = bits;
    this.distance = distance;
    this.split = codec === 'webp' && bits > 8;
    this.gray = codec === 'jxl' && distance > 0;
    this.dtype = (this.split ? 8 : bits) <= 8 ? 'u8' : 'u16';
  }

  /** (planes, channels) as stored. */
  stored(p, c) {
    const [sp, sc] = this.gray ? [p * c, 1] : [p, c];
    return [this.split ? 2 * sp : sp, sc];
  }

  mosaic(sp) {
    if (sp <= 1) return [1, 1];
    const cols = Math.ceil(Math.sqrt(sp));
    return [Math.ceil(sp / cols), cols];
  }

  imageShape(p, h, w, c) {
    const [sp, sc] = this.stored(p, c);
    const [rows, cols] = this.mosaic(sp);
    return sc === 1 ? [rows * h, cols * w] : [rows * h, cols * w, sc];
  }

  /**
   * Integers of the given cells, [cells.length, p·c] (channel p·c + ch), from the decoded image
   * data (C order of {@link imageShape}): the inverse of Python's `to_image`.
   */
  gather(img, p, h, w, c, cells) {
    const [sp, sc] = this.stored(p, c);
    const cols = this.mosaic(sp)[1];
    const W = cols * w;
    const pc = p * c;
    const n = cells.length;
    const offset = new Int32Array(n); // sample offset of each cell inside a tile
    for (let g = 0; g < n; g++) {
      const y = Math.floor(cells[g] / w);
      offset[g] = (y * W + (cells[g] - y * w)) * sc;
    }
    const origin = (tile) => (Math.floor(tile / cols) * h * W + (tile % cols) * w) * sc;
    const out = new Uint16Array(n * pc);
    for (let pl = 0; pl < p; pl++) {
      for (let ch = 0; ch < c; ch++) {
        const j = pl * c + ch;
        const tile = this.gray ? j : pl;
        const base = origin(tile) + (this.gray ? 0 : ch);
        if (this.split) {
          const low = origin(tile + sp / 2) + ch;
          for (let g = 0; g < n; g++) out[g * pc + j] = (img[base + offset[g]] << 8) | img[low + offset[g]];
        } else {
          for (let g = 0; g < n; g++) out[g * pc + j] = img[base + offset[g]];
        }
      }
    }
    return out;
  }
}

/** t̂ = lo + q·Δ (float32) of q [rows, C] with per-channel lo / hi. */
function dequantise(q, lo, hi, bits, channels) {
  const levels = f32(2 ** bits - 1);
  const lo32 = Float32Array.from(lo);
  const step = Float32Array.from(lo, (l, k) => f32(hi[k] - l) / levels);
  const out = new Float32Array(q.length);
  for (let r = 0; r < q.length; r += channels) {
    for (let k = 0; k < channels; k++) out[r + k] = lo32[k] + Math.fround(q[r + k] * step[k]);
  }
  return out;
}

/**
 * Decode a grid scene.
 * @param {import('./container.js').SpkFile} spk the open file
 * @param {(name: string, opts: object) => Promise<{dtype: string, shape: number[], data: any}>} section
 * @param {((g: object) => (void|Promise<void>))|null} [onGeometry] when given, the SH rest (`shN`,
 *   the largest attribute) is read last and this is called (and awaited) before it with the
 *   geometry and DC colours `{means, scales, quats, opacities, sh0}`
 */
export async function decodeGrid(spk, section, onGeometry = null) {
  const m = spk.meta;
  const n = spk.numGaussians;
  const fail = (problem) => spk.fail(problem);
  const bad = (why) => fail(`malformed grid-scene header (${why})`);
  const int = (v, lo, hi, what) => {
    if (!Number.isInteger(v) || v < lo || v > hi) throw bad(`${what} must be an integer in ${lo}..${hi}, not ${JSON.stringify(v)}`);
    return v;
  };
  const range = (e, c, what) => {
    const { lo, hi } = e;
    if (!Array.isArray(lo) || !Array.isArray(hi) || lo.length !== c || hi.length !== c) throw bad(`${what} needs ${c} lo/hi values`);
    if (![...lo, ...hi].every((v) => typeof v === 'number')) throw bad(`${what} lo/hi are not numbers`);
    const l = lo.map(f32);
    const h = hi.map(f32);
    if (!l.every((v, k) => Number.isFinite(v) && Number.isFinite(h[k]) && v <= h[k])) throw bad(`${what} has an invalid range`);
    return [l, h];
  };
  const read = async (name, codec, shape, dtype) => {
    if (!spk.has(name)) throw fail(`section '${name}' is missing`);
    const got = spk.info(name).codec;
    if (got !== codec) throw fail(`section '${name}' uses codec '${got}', the header says '${codec}'`);
    const count = shape.reduce((a, b) => a * b, 1);
    const want = codec === 'ans' ? [shape[0] * shape[1], shape.slice(2).reduce((a, b) => a * b, 1)] : shape;
    const a = await section(name, { maxElements: count, shape: want, dtype });
    return a.data;
  };
  /** Section `name` laid out by `layout`: the integers [cells.length, p·c]. */
  const grid = async (name, layout, p, gh, gw, c, cells) => {
    const img = await read(name, layout.codec, layout.imageShape(p, gh, gw, c), layout.dtype);
    return layout.gather(img, p, gh, gw, c, cells);
  };
  const maxOf = (a) => {
    let m = 0;
    for (let i = 0; i < a.length; i++) if (a[i] > m) m = a[i];
    return m;
  };

  if (m.kind !== GRID_KIND) throw fail(`not a grid scene (kind ${JSON.stringify(m.kind)}, expected '${GRID_KIND}')`);
  int(m.version, 1, 1, 'version');
  if (!m.grid || typeof m.grid !== 'object') throw bad('no grid');
  const h = int(m.grid.height, 1, 2 * n + MAX_SPARE, 'grid height');
  const w = int(m.grid.width, 1, 2 * n + MAX_SPARE, 'grid width');
  if (n === 0 || h * w < n || h * w > 2 * n + MAX_SPARE) throw bad(`a ${h}x${w} grid does not fit ${n} Gaussians`);
  const degree = int(m.sh_degree, 0, 10, 'sh_degree');
  if (degree > 3) throw fail(`SH degree ${degree} is not supported by the viewer (at most 3)`);
  if (!['signed-log1p', 'linear'].includes(m.means_transform) || !OPACITY_SPACES.includes(m.opacity_space)) throw bad('unknown transform');
  const attrs = m.attributes;
  if (!attrs || typeof attrs !== 'object' || Array.isArray(attrs)) throw bad('attributes is not an object');

  const nEmpty = h * w - n;
  const empty = await read('grid.empty', 'deflate', [nEmpty], 'u32');
  for (let k = 0; k < nEmpty; k++) {
    if (empty[k] >= h * w || (k > 0 && empty[k] <= empty[k - 1])) {
      throw fail("section 'grid.empty' is not a strictly increasing list of cells");
    }
  }
  const cells = new Int32Array(n); // occupied cells in raster order
  for (let cell = 0, e = 0, g = 0; cell < h * w; cell++) {
    if (e < nEmpty && empty[e] === cell) e++;
    else cells[g++] = cell;
  }
  const kRest = (degree + 1) ** 2 - 1;
  const channelsOf = { means: 3, sh0: 3, shN: 3 * kRest, scales: 3, quats: 4, opacities: 1 };
  const out = {};
  const decodeAttribute = async (name) => {
    const channels = channelsOf[name];
    if (channels === 0) {
      if (name in attrs) throw bad('shN present for SH degree 0');
      return;
    }
    const e = attrs[name];
    if (!e || typeof e !== 'object') throw bad(`no attribute '${name}'`);
    const { codec, distance } = e;
    if (!GRID_CODECS.includes(codec)) throw bad(`${name} codec ${JSON.stringify(codec)}`);
    if (typeof distance !== 'number' || !(distance >= 0 && distance <= 25) || (distance && codec !== 'jxl')) {
      throw bad(`${name} distance ${JSON.stringify(distance)}`);
    }
    if (e.low_bits && (distance || (name === 'shN' && e.mode !== 'grid'))) throw bad(`${name} low bits need a lossless grid of values`);
    if (name === 'shN' && e.mode === 'palette') {
      const k = int(e.size, 1, Math.min(n, 1 << 16), 'palette size');
      const lbitsWant = Math.max(1, Math.ceil(Math.log2(k)));
      const lbits = int(e.label_bits, lbitsWant, lbitsWant, 'label bits');
      const bits = int(e.bits, 1, 16, 'palette bits');
      const [lo, hi] = range(e, channels, name);
      const labels = await grid('grid.shN.labels', new Layout(codec, lbits, distance), 1, h, w, 1, cells);
      if (labels.length && maxOf(labels) >= k) throw fail("section 'grid.shN.labels' has a label outside the palette");
      const all = Int32Array.from({ length: k * kRest }, (_, i) => i);
      const cq = await grid('grid.shN.centroids', new Layout(codec, bits, distance), 1, k, kRest, 3, all);
      if (maxOf(cq) >= 2 ** bits) throw fail(`section 'grid.shN.centroids' has values over ${bits} bits`);
      const cent = dequantise(cq, lo, hi, bits, channels);
      const v = new Float32Array(n * channels);
      for (let g = 0; g < n; g++) v.set(cent.subarray(labels[g] * channels, (labels[g] + 1) * channels), g * channels);
      out[name] = v;
      return;
    }
    if (name === 'shN' && e.mode === 'rvq') {
      // residual VQ: S label planes, S stacked codebooks of k rows each quantised with their own
      // per-channel range; value = Σ_s Ĉ_s[label_s], summed in float32 in stage order (Python's
      // `read_grid_scene`)
      const stages = int(e.stages, 1, MAX_RVQ_STAGES, 'R-VQ stages');
      const k = int(e.size, 1, Math.min(n, 1 << 16), 'R-VQ codebook size');
      const lbitsWant = Math.max(1, Math.ceil(Math.log2(k)));
      const lbits = int(e.label_bits, lbitsWant, lbitsWant, 'label bits');
      const bits = int(e.bits, 1, 16, 'R-VQ codebook bits');
      const [lo, hi] = range(e, stages * channels, name);
      const labels = await grid('grid.shN.labels', new Layout(codec, lbits, distance), stages, h, w, 1, cells);
      if (labels.length && maxOf(labels) >= k) throw fail("section 'grid.shN.labels' has a label outside the codebook");
      const all = Int32Array.from({ length: stages * k * kRest }, (_, i) => i);
      const cq = await grid('grid.shN.centroids', new Layout(codec, bits, distance), 1, stages * k, kRest, 3, all);
      if (maxOf(cq) >= 2 ** bits) throw fail(`section 'grid.shN.centroids' has values over ${bits} bits`);
      const v = new Float32Array(n * channels);
      for (let st = 0; st < stages; st++) {
        const rows = k * channels;
        const book = dequantise(cq.subarray(st * rows, (st + 1) * rows), lo.slice(st * channels, (st + 1) * channels),
          hi.slice(st * channels, (st + 1) * channels), bits, channels);
        for (let g = 0; g < n; g++) {
          const src = labels[g * stages + st] * channels;
          for (let c = 0; c < channels; c++) v[g * channels + c] += book[src + c];
        }
      }
      out[name] = v;
      return;
    }
    if (name === 'shN' && e.mode === 'basis') {
      // low-rank generator (`splatpack.codecs.grid.basis`): r coefficient planes sharing one
      // step, and a float32 table [1 + r, channels] (mean, then basis rows); value = μ + Σ_j ĉ_j b_j
      // `zero` > 0: a bit mask `grid.shN.zero` (raster order, most significant bit first) of the
      // Gaussians whose SH rest is zero, and only the others' coefficients, packed row-major on
      // an image of the grid's width (Python's `packed_planes`)
      const r = int(e.rank, 1, Math.min(channels, 45), 'SH basis rank');
      const bits = int(e.bits, 1, 16, 'shN bits');
      const [lo, hi] = range(e, r, name);
      const zeros = int(e.zero === undefined ? 0 : e.zero, 0, n - 1, 'zeroed SH rests');
      let zero = null;
      let coefCells = cells;
      let coefRows = h;
      if (zeros) {
        const mask = await read('grid.shN.zero', 'deflate', [Math.ceil(n / 8)], 'u8');
        zero = new Uint8Array(n);
        let count = 0;
        for (let g = 0; g < n; g++) count += zero[g] = (mask[g >> 3] >> (7 - (g & 7))) & 1;
        if (count !== zeros) throw fail(`section 'grid.shN.zero' marks ${count} SH rests, not ${zeros} (corrupt)`);
        coefRows = Math.max(1, Math.ceil((n - zeros) / w));
        coefCells = Int32Array.from({ length: n - zeros }, (_, i) => i);
      }
      const q = await grid('grid.shN.coefs', new Layout(codec, bits, distance), r, coefRows, w, 1, coefCells);
      if (maxOf(q) >= 2 ** bits) throw fail(`section 'grid.shN.coefs' has values over ${bits} bits (corrupt)`);
      const table = await read('grid.shN.basis', 'deflate', [1 + r, channels], 'f32');
      for (let i = 0; i < table.length; i++) {
        if (!Number.isFinite(table[i])) throw fail("section 'grid.shN.basis' holds non-finite values (corrupt)");
      }
      const coefs = dequantise(q, lo, hi, bits, r);
      const v = new Float32Array(n * channels); // zeroed SH rests stay 0
      for (let g = 0, k = 0; g < n; g++) {
        if (zero && zero[g]) continue;
        for (let c = 0; c < channels; c++) {
          let s = table[c];
          for (let j = 0; j < r; j++) s += coefs[k * r + j] * table[(1 + j) * channels + c];
          v[g * channels + c] = s;
        }
        k++;
      }
      out[name] = v;
      return;
    }
    if (name === 'shN' && e.mode !== 'grid') throw bad('unknown shN mode');
    const meansEncoding = e.encoding === undefined ? 'grid' : e.encoding;
    if (name === 'means' && meansEncoding === 'curve-keys') {
      out.means = await curveKeys(e, codec, distance);
      return;
    }
    if (name === 'means' && meansEncoding !== 'grid') throw bad('unknown means encoding');
    const quatsEncoding = e.encoding === undefined ? 'components' : e.encoding;
    if (name === 'quats' && quatsEncoding === 'smallest-three') {
      out.quats = await smallestThree(e, codec, distance);
      return;
    }
    if (name === 'quats' && quatsEncoding !== 'components') throw bad('unknown quats encoding');
    const bits = int(e.bits, 1, 16, `${name} bits`);
    const [lo, hi] = range(e, channels, name);
    const r = int(e.low_bits === undefined ? 0 : e.low_bits, 0, bits - 1, `${name} low bits`);
    const c = name === 'shN' ? 3 : channels;
    const q = await grid(`grid.${name}`, new Layout(codec, bits - r, distance), channels / c, h, w, c, cells);
    if (maxOf(q) >= 2 ** (bits - r)) throw fail(`section 'grid.${name}' has values over ${bits - r} bits (corrupt)`);
    out[name] = dequantise(await withLowBits(name, e, q, r, channels, codec), lo, hi, bits, channels);
  };
  /**
   * The quantised values [n, c] from the image's `high` bits and, when `r` > 0, the low-bit stream
   * `grid.<name>.low` and the dropped bits, `grid.<name>.drop` (`drop: true`) or the scene's class
   * `grid.drop` times the depth `drop: k` (Python's `codecs/grid/lowbits.py`):
   * per Gaussian in raster order, per channel, its r − k kept low bits most significant first,
   * packed most significant first; q = (high << r) + kept + (k > 0 ? 2^(k−1) : 0).
   */
  const withLowBits = async (name, e, high, r, c, codec) => {
    if (r === 0) {
      if ('drop' in e) throw bad(`${name} drop without low bits`);
      return high;
    }
    let drop = null;
    let dropped = 0;
    if (e.drop === true) {
      drop = await grid(`grid.${name}.drop`, new Layout(codec, 32 - Math.clz32(r)), 1, h, w, 1, cells);
      for (let g = 0; g < n; g++) {
        if (drop[g] > r) throw fail(`section 'grid.${name}.drop' drops more than the ${r} low bits`);
        dropped += drop[g];
      }
    } else if (typeof e.drop === 'number') {
      // one class for the scene (grid.drop, 0 or 1 per Gaussian), this attribute's depth for it
      const depth = int(e.drop, 1, r, `${name} drop`);
      const cls = await grid('grid.drop', new Layout('ans', 1), 1, h, w, 1, cells);
      drop = new Uint16Array(n);
      for (let g = 0; g < n; g++) {
        if (cls[g] > 1) throw fail("section 'grid.drop' has a class other than 0 and 1 (corrupt)");
        drop[g] = cls[g] * depth;
        dropped += drop[g];
      }
    } else if ('drop' in e) {
      throw bad(`${name} drop must be true or a bit count when present`);
    }
    const count = c * (r * n - dropped);
    const packed = await read(`grid.${name}.low`, 'raw', [Math.ceil(count / 8)], 'u8');
    if (count % 8 && (packed[packed.length - 1] & ((1 << (8 - (count % 8))) - 1))) {
      throw fail(`section 'grid.${name}.low' has non-zero padding bits (corrupt)`);
    }
    const q = new Uint16Array(n * c);
    let bit = 0;
    for (let g = 0; g < n; g++) {
      const k = drop ? drop[g] : 0;
      const half = k > 0 ? 1 << (k - 1) : 0;
      for (let ch = 0; ch < c; ch++) {
        let low = 0;
        for (let j = r - 1; j >= k; j--, bit++) low |= ((packed[bit >> 3] >> (7 - (bit & 7))) & 1) << j;
        q[g * c + ch] = (high[g * c + ch] << r) + low + half;
      }
    }
    return q;
  };
  /** The position of `cell` along the snake (even rows left to right, odd rows right to left). */
  const snakeAt = (cell) => {
    const y = Math.floor(cell / w);
    const x = cell - y * w;
    return y * w + (y & 1 ? w - 1 - x : x);
  };
  /**
   * Positions as the gaps of their high bits' sorted 3D Hilbert keys (Python's
   * `codecs/grid/curve_keys.py`): `grid.means.lengths` holds each gap's bit length ℓ, `grid.means.rest`
   * the ℓ − 1 bits below each gap's leading one, most significant first; the k-th key is the
   * Gaussian in the snake's k-th cell. Keys reach 48 bits: they are summed as doubles (exact below
   * 2^53) and split into two 24-bit halves for the inverse transform (Skilling 2004).
   */
  const curveKeys = async (e, codec, distance) => {
    const bits = int(e.bits, 1, 16, 'means bits');
    const [lo, hi] = range(e, 3, 'means');
    const r = int(e.low_bits === undefined ? 0 : e.low_bits, 0, bits - 1, 'means low bits');
    if (distance) throw bad('curve-keys positions are lossless (distance 0)');
    for (let k = 0; k < nEmpty; k++) {
      if (snakeAt(empty[k]) < n) throw fail("curve-keys positions need the empty cells at the end of the snake (section 'grid.empty')");
    }
    const hb = bits - r;
    const lengths = await read('grid.means.lengths', 'ans', [n, 1], 'u8');
    let count = 0;
    for (let g = 0; g < n; g++) {
      if (lengths[g] > 3 * hb) throw fail(`section 'grid.means.lengths' has a gap of more than ${3 * hb} bits (corrupt)`);
      if (lengths[g] > 1) count += lengths[g] - 1;
    }
    const packed = await read('grid.means.rest', 'raw', [Math.ceil(count / 8)], 'u8');
    const corrupt = (why) => fail(`sections 'grid.means.lengths' and 'grid.means.rest' are corrupt (${why})`);
    if (count % 8 && (packed[packed.length - 1] & ((1 << (8 - (count % 8))) - 1))) throw corrupt('non-zero padding bits');
    const end = 2 ** (3 * hb);
    const points = new Uint16Array(n * 3); // along the curve
    const x = [0, 0, 0];
    let key = 0;
    for (let k = 0, bit = 0; k < n; k++) {
      const len = lengths[k];
      if (len > 0) {
        let gap = 1;
        for (let j = 1; j < len; j++, bit++) gap = gap * 2 + ((packed[bit >> 3] >> (7 - (bit & 7))) & 1);
        key += gap;
        if (key >= end) throw corrupt(`keys past the end of a ${3 * hb}-bit curve`);
      }
      const top = Math.floor(key / 16777216);
      const bottom = key - top * 16777216;
      x[0] = x[1] = x[2] = 0;
      for (let b = 0; b < hb; b++) {
        for (let i = 0; i < 3; i++) {
          const p = 3 * b + 2 - i; // bit b of axis i
          x[i] |= (p < 24 ? (bottom >>> p) & 1 : (top >>> (p - 24)) & 1) << b;
        }
      }
      const t = x[2] >> 1; // Gray decode
      x[2] ^= x[1];
      x[1] ^= x[0];
      x[0] ^= t;
      for (let q = 2; q < 1 << hb; q <<= 1) { // redo the excess work, per bit from the bottom
        const p = q - 1;
        for (let i = 2; i >= 0; i--) {
          if (x[i] & q) x[0] ^= p;
          else {
            const s = (x[0] ^ x[i]) & p;
            x[0] ^= s;
            x[i] ^= s;
          }
        }
      }
      points[k * 3] = x[0];
      points[k * 3 + 1] = x[1];
      points[k * 3 + 2] = x[2];
    }
    const high = new Uint16Array(n * 3); // the decoder's order: occupied cells in raster order
    for (let g = 0; g < n; g++) high.set(points.subarray(snakeAt(cells[g]) * 3, snakeAt(cells[g]) * 3 + 3), g * 3);
    return dequantise(await withLowBits('means', e, high, r, 3, codec), lo, hi, bits, 3);
  };
  /**
   * Quaternions stored as their smallest three components (b bits over lo..hi each) plus the
   * index of the largest (0..3) in a 4th channel; the largest is √(1 − Σ small²) (Python's
   * `from_smallest_three`: the sum in float64 of the float32 components, the root cast to float32).
   */
  const smallestThree = async (e, codec, distance) => {
    const bits = int(e.bits, 2, 16, 'quats bits');
    const [lo, hi] = range(e, 3, 'quats');
    const r = int(e.low_bits === undefined ? 0 : e.low_bits, 0, bits - 2, 'quats low bits');
    const q = await grid('grid.quats', new Layout(codec, bits - r, distance), 1, h, w, 4, cells);
    const q3 = new Uint16Array(n * 3);
    const largest = new Uint8Array(n);
    for (let g = 0; g < n; g++) {
      let over = q[g * 4 + 3] > 3;
      for (let k = 0; k < 3; k++) {
        over ||= q[g * 4 + k] >= 2 ** (bits - r);
        q3[g * 3 + k] = q[g * 4 + k];
      }
      if (over) throw fail("section 'grid.quats' has values over its bits or an index over 3 (corrupt)");
      largest[g] = q[g * 4 + 3];
    }
    const small = dequantise(await withLowBits('quats', e, q3, r, 3, codec), lo, hi, bits, 3);
    const quats = new Float32Array(n * 4);
    for (let g = 0; g < n; g++) {
      const big = largest[g];
      let sum = 0;
      for (let k = 0, j = 0; k < 4; k++) {
        if (k === big) continue;
        const v = small[g * 3 + j++];
        quats[g * 4 + k] = v;
        sum += v * v;
      }
      quats[g * 4 + big] = f32(Math.sqrt(Math.max(0, 1 - sum)));
    }
    return quats;
  };
  /** Every value of the named attributes is finite (means checked after toScene's expm1). */
  const checkFinite = (names) => {
    for (const name of names) {
      const v = out[name];
      if (!v) continue;
      for (let i = 0; i < v.length; i++) {
        if (!Number.isFinite(v[i])) throw fail(`'${name}' decodes to non-finite values (corrupt range in the header)`);
      }
    }
  };

  let geometry;
  if (onGeometry) {
    const first = ATTRIBUTES.filter((a) => a !== 'shN');
    for (const name of first) await decodeAttribute(name);
    geometry = toScene(out, n, m.opacity_space, m.means_transform === 'linear');
    checkFinite(first);
    await onGeometry({ ...geometry, sh0: out.sh0 });
    await decodeAttribute('shN');
    checkFinite(['shN']);
  } else {
    for (const name of ATTRIBUTES) await decodeAttribute(name);
    geometry = toScene(out, n, m.opacity_space, m.means_transform === 'linear');
    checkFinite(ATTRIBUTES);
  }
  return {
    kind: 'grid',
    numGaussians: n,
    meta: m,
    ...geometry,
    shDegree: degree,
    sh0: out.sh0,
    shRest: kRest ? out.shN : null,
    colourField: null,
  };
}

/**
 * The stored attributes transformed back to the scene's parameters: means (signed expm1, or as
 * they are with `means_transform: linear`),
 * α (sigmoid, or clamped in the alpha space), linear scales, normalised quaternions. `out.means`
 * and `out.quats` are transformed in place.
 */
function toScene(out, n, opacitySpace, linear = false) {
  const means = out.means;
  for (let k = 0; k < means.length && !linear; k++) {
    const t = means[k];
    means[k] = f32(Math.sign(t) * f32(Math.expm1(Math.abs(t))));
  }
  const opacities = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const t = out.opacities[i];
    if (opacitySpace === 'alpha') opacities[i] = Math.min(Math.max(t, ALPHA_EPS), ALPHA_MAX);
    else opacities[i] = f32(1 / (1 + Math.exp(-t)));
  }
  const scales = out.scales.map((s) => f32(Math.exp(s)));
  const quats = out.quats;
  for (let i = 0; i < quats.length; i += 4) {
    const norm = Math.sqrt(quats[i] ** 2 + quats[i + 1] ** 2 + quats[i + 2] ** 2 + quats[i + 3] ** 2);
    const d = Math.max(norm, 1e-12);
    for (let k = 0; k < 4; k++) quats[i + k] /= d;
  }
  return { means, scales, quats, opacities };
}
