/**
 * Decoder of the `ans` array codec (docs/spk-format.md §3.3): per-column static categorical
 * models and constriction's stack ANS coder (32-bit words, 64-bit state, 24-bit probabilities).
 *
 * The 64-bit state is held as two uint32 halves `hi`, `lo` (no BigInt in the inner loop). With
 * x = state >> 24 < 2^40 split as x = xh·2^16 + xl, the update
 * `state = x·prob + q − left[s]` is computed exactly from products below 2^53:
 * `xh·prob` (< 2^48) and `xl·prob + (q − left[s])` (< 2^41). Symbols are found through a
 * 2^16-bucket index of the cumulative table (bucket = q >> 8) and a binary search inside the
 * bucket, so a column of any alphabet size decodes at tens of millions of symbols per second.
 *
 * Validation follows `splatpack.spk.arrays._decode_ans`: model checks before any
 * allocation sized by the payload, the last word nonzero, and at the end the state is 0, no
 * words remain and every column's symbol histogram equals its counts.
 */

const PRECISION = 24;
const ONE = 1 << PRECISION;
const MASK = ONE - 1;
const MAX_ALPHABET = 1 << 16;
const MODE_CONSTANT = 0;
const MODE_DENSE = 1;
const MODE_SPARSE = 2;
const BUCKET_SHIFT = 8; // 2^24 / 2^8 = 2^16 buckets

/** Inclusive value range of each integer dtype the codec allows. */
const RANGES = {
  u8: [0, 0xff],
  i8: [-0x80, 0x7f],
  u16: [0, 0xffff],
  i16: [-0x8000, 0x7fff],
  u32: [0, 0xffffffff],
  i32: [-0x80000000, 0x7fffffff],
};

/**
 * Decode the body of an `ans` payload (after its array header).
 *
 * @param {import('./codecs.js').Cursor} r cursor positioned after the array header
 * @param {{dtype: string, shape: number[], ctor: Function}} header the parsed array header
 * @returns {ArrayLike<number>} the array's elements in C order (a typed array of `header.ctor`)
 */
export function decodeAnsBody(r, header) {
  const { dtype, shape, ctor } = header;
  const range = RANGES[dtype];
  if (!range) throw r.fail(`dtype ${dtype} is not allowed in an ans payload`);
  if (shape.length !== 1 && shape.length !== 2) throw r.fail(`${shape.length}-D shape is not allowed in an ans payload`);
  const nRows = shape[0];
  const nCols = shape.length === 2 ? shape[1] : 1;
  if (nCols > r.remaining) throw r.fail(`payload too short for ${nCols} columns`);
  const columns = [];
  for (let j = 0; j < nCols; j++) {
    const what = `column ${j} model`;
    const mode = r.u8(what);
    const lo = unzigzag(r.varint(what));
    if (mode === MODE_CONSTANT) {
      if (lo < range[0] || lo > range[1]) throw r.fail(`column ${j} value ${lo} is out of range for ${dtype}`);
      if (nRows === 0 && lo !== 0) throw r.fail(`column ${j} of an empty array has a nonzero value`);
      columns.push({ lo, counts: null });
      continue;
    }
    if (nRows === 0) throw r.fail(`column ${j} of an empty array has a model`);
    let counts;
    if (mode === MODE_DENSE) {
      const n = r.varint(what);
      if (n < 2 || n > MAX_ALPHABET) throw r.fail(`column ${j} alphabet size ${n} is outside 2..${MAX_ALPHABET}`);
      if (n > r.remaining) throw r.fail(`payload truncated in ${what}`);
      counts = new Float64Array(n);
      for (let s = 0; s < n; s++) counts[s] = r.varint(what);
      if (counts[0] === 0 || counts[n - 1] === 0) throw r.fail(`column ${j} model has zero counts at the alphabet ends`);
    } else if (mode === MODE_SPARSE) {
      const m = r.varint(what);
      if (m < 2 || m > MAX_ALPHABET) throw r.fail(`column ${j} has ${m} distinct symbols, outside 2..${MAX_ALPHABET}`);
      if (2 * m > r.remaining) throw r.fail(`payload truncated in ${what}`);
      const syms = new Float64Array(m);
      const cnts = new Float64Array(m);
      let sym = 0;
      let badGap = false;
      let zero = false;
      for (let k = 0; k < m; k++) {
        const gap = r.varint(what);
        const c = r.varint(what);
        if ((k === 0 && gap !== 0) || (k > 0 && gap === 0)) badGap = true;
        sym += Math.min(gap, MAX_ALPHABET);
        syms[k] = sym;
        cnts[k] = c;
        if (c === 0) zero = true;
      }
      if (badGap) throw r.fail(`column ${j} model has invalid symbol gaps`);
      if (sym >= MAX_ALPHABET) throw r.fail(`column ${j} alphabet exceeds ${MAX_ALPHABET}`);
      if (zero) throw r.fail(`column ${j} model lists a zero count`);
      counts = new Float64Array(sym + 1);
      for (let k = 0; k < m; k++) counts[syms[k]] = cnts[k];
    } else {
      throw r.fail(`column ${j} has unknown model mode ${mode}`);
    }
    let total = 0;
    for (let s = 0; s < counts.length; s++) total += counts[s];
    if (total !== nRows) throw r.fail(`column ${j} symbol counts sum to ${total}, expected ${nRows}`);
    const n = counts.length;
    if (lo < range[0] || lo + n - 1 > range[1]) {
      throw r.fail(`column ${j} values ${lo}..${lo + n - 1} are out of range for ${dtype}`);
    }
    columns.push({ lo, counts });
  }
  const nWords = r.varint('word count');
  r.take((4 - (r.pos % 4)) % 4, 'padding');
  if (r.remaining !== 4 * nWords) throw r.fail(`word count ${nWords} does not match the ${r.remaining} remaining bytes`);
  const coded = columns.some((c) => c.counts !== null);
  if (!coded && nWords) throw r.fail('compressed words present but no column is coded');
  const words = r.u32Array(nWords);

  const out = new ctor(nRows * nCols);
  // the stack: words are popped from the end; state = hi·2^32 + lo
  let top = nWords;
  let hi = 0;
  let lo = 0;
  if (top > 0) {
    lo = words[--top];
    if (lo === 0) throw r.fail('invalid compressed data (the last word is zero)');
    if (top > 0) {
      hi = lo;
      lo = words[--top];
    }
  }
  for (let j = 0; j < nCols; j++) {
    const col = columns[j];
    if (col.counts === null) {
      for (let i = 0; i < nRows; i++) out[i * nCols + j] = col.lo;
      continue;
    }
    const { left, index } = buildModel(col.counts);
    const n = col.counts.length;
    const hist = new Float64Array(n);
    const base = col.lo;
    for (let i = 0; i < nRows; i++) {
      const q = lo & MASK;
      // symbol s with left[s] <= q < left[s + 1]
      const bucket = q >>> BUCKET_SHIFT;
      let a = index[bucket];
      let b = index[bucket + 1];
      while (a < b) {
        const mid = (a + b + 1) >>> 1;
        if (left[mid] <= q) a = mid;
        else b = mid - 1;
      }
      const s = a;
      hist[s]++;
      const prob = left[s + 1] - left[s];
      // x = state >> 24 = hi·2^8 + (lo >>> 24) < 2^40; x = xh·2^16 + xl
      const xl = ((hi & 0xff) << 8) | (lo >>> 24);
      const xh = hi >>> 8;
      const bprod = xh * prob; // < 2^48
      const bhi = Math.floor(bprod / 65536);
      const t = (bprod - bhi * 65536) * 65536 + xl * prob + (q - left[s]); // < 2^42
      const carry = Math.floor(t / 4294967296);
      lo = t - carry * 4294967296;
      hi = bhi + carry;
      if (hi === 0 && top > 0) {
        hi = lo;
        lo = words[--top];
      }
      out[i * nCols + j] = base + s;
    }
    for (let s = 0; s < n; s++) {
      if (hist[s] !== col.counts[s]) throw r.fail(`column ${j} does not decode to its recorded symbol counts (corrupt)`);
    }
  }
  if (coded && (hi !== 0 || lo !== 0 || top !== 0)) {
    throw r.fail('compressed data left over after the last column (corrupt)');
  }
  return out;
}

/**
 * The quantised model of §3.3: `left[s] = floor(C_s · scale) + s` with
 * `scale = (2^24 − n) / N` in IEEE float64 (constriction's `Categorical(c, perfect=False)`),
 * `left[n] = 2^24`; plus `index[k]`, the symbol whose interval holds `q = k·2^8`, so that a
 * lookup only searches `[index[k], index[k + 1]]`.
 */
function buildModel(counts) {
  const n = counts.length;
  let total = 0;
  for (let s = 0; s < n; s++) total += counts[s];
  const scale = (ONE - n) / total;
  const left = new Int32Array(n + 1);
  let c = 0;
  for (let s = 0; s < n; s++) {
    left[s] = Math.floor(c * scale) + s;
    c += counts[s];
  }
  left[n] = ONE;
  const nb = ONE >>> BUCKET_SHIFT;
  const index = new Int32Array(nb + 1);
  let s = 0;
  for (let k = 0; k < nb; k++) {
    const q = k << BUCKET_SHIFT;
    while (left[s + 1] <= q) s++;
    index[k] = s;
  }
  index[nb] = n - 1;
  return { left, index };
}

function unzigzag(z) {
  // z < 2^64 arrives as a float; values beyond 2^53 are out of every allowed range anyway
  return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
}
