// Reading a URL or a dropped File as a stream of chunks, with progress.
//
// Every load goes through here so the progress bar moves while bytes arrive and decoders that
// can use partial data (the .splat parser, the .spk header) see each chunk as it comes.

/**
 * Open a URL or File as a byte stream: `{stream, total, name}` (total 0 when unknown).
 * @param {string|File} source
 */
export async function openSource(source) {
  if (typeof source !== "string") {
    return { stream: source.stream(), total: source.size, name: source.name };
  }
  const response = await fetch(source);
  if (!response.ok) throw new Error(`${source}: HTTP ${response.status} ${response.statusText}`);
  const length = Number(response.headers.get("content-length") || 0);
  const encoded = response.headers.get("content-encoding");
  // With a content-encoding the length counts compressed bytes, not the ones the stream yields.
  const total = encoded && encoded !== "identity" ? 0 : length;
  if (!response.body) {
    const bytes = new Uint8Array(await response.arrayBuffer());
    return { stream: new Blob([bytes]).stream(), total: bytes.length, name: source };
  }
  return { stream: response.body, total, name: source };
}

/**
 * Read a stream to the end into one Uint8Array, calling `onChunk(chunk, loaded, total)` for
 * each chunk. Returns the bytes (a view of exactly the loaded length).
 */
export async function readAll(stream, total, onChunk) {
  let buffer = new Uint8Array(total > 0 ? total : 1 << 20);
  let loaded = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (loaded + value.length > buffer.length) {
      const bigger = new Uint8Array(Math.max(buffer.length * 2, loaded + value.length));
      bigger.set(buffer.subarray(0, loaded));
      buffer = bigger;
    }
    buffer.set(value, loaded);
    loaded += value.length;
    onChunk?.(value, loaded, total, buffer);
  }
  return buffer.subarray(0, loaded);
}
