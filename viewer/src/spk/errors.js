/**
 * Errors of the `.spk` decoder.
 *
 * Every problem a file can cause (corrupt, truncated, forged, unsupported) is an {@link SpkError}
 * with a one-line message `"<file>: <problem>"`, like Python's `splatpack.spk.container.SpkError`
 * (docs/spk-format.md §2: "one clear message naming the file and the problem").
 * Anything else thrown by this package is a bug.
 */

export class SpkError extends Error {
  /**
   * @param {string} problem what is wrong, in words
   * @param {string} [file] the file's name, prefixed to the message when given
   */
  constructor(problem, file) {
    const line = String(problem).split(/\s+/).filter(Boolean).join(' ');
    super(file ? `${file}: ${line}` : line);
    this.name = 'SpkError';
    this.file = file ?? null;
  }
}
