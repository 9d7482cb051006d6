// Which splat format a file is: from its first bytes where the format has a signature, else
// from its name. The viewer decodes .spk itself and hands the others to Spark.
import { SplatFileType } from "@sparkjsdev/spark";

export const SPK_MAGIC = [0x89, 0x53, 0x50, 0x4b]; // "\x89SPK"

/** Formats the viewer opens, by file extension. */
export const EXTENSIONS = {
  spk: "spk",
  ply: "ply",
  splat: "splat",
  spz: "spz",
  sog: "sog",
  zip: "sog",
};

export const ACCEPT = ".spk,.ply,.splat,.spz,.sog,.zip";

/** Lower-case extension of a file name or URL path ("" when none). */
export function extensionOf(name) {
  const path = String(name).split(/[?#]/, 1)[0];
  const base = path.slice(path.lastIndexOf("/") + 1);
  const dot = base.lastIndexOf(".");
  return dot > 0 ? base.slice(dot + 1).toLowerCase() : "";
}

/** Last path component of a URL or file name, for messages. */
export function baseName(name) {
  const path = String(name).split(/[?#]/, 1)[0];
  return decodeURIComponent(path.slice(path.lastIndexOf("/") + 1)) || String(name);
}

/**
 * The format of a file from its leading bytes (`head`, may be empty) and its name.
 * Returns one of "spk", "ply", "splat", "spz", "sog"; throws on anything else.
 */
export function detectFormat(name, head = new Uint8Array(0)) {
  const starts = (sig) => sig.every((b, i) => head[i] === b);
  if (head.length >= 4 && starts(SPK_MAGIC)) return "spk";
  if (head.length >= 3 && starts([0x70, 0x6c, 0x79])) return "ply"; // "ply"
  if (head.length >= 4 && starts([0x50, 0x4b, 0x03, 0x04])) return "sog"; // zip
  if (head.length >= 4 && starts([0x4e, 0x47, 0x53, 0x50])) return "spz"; // "NGSP": SPZ v4
  const ext = extensionOf(name);
  if (head.length >= 2 && starts([0x1f, 0x8b]) && (ext === "spz" || ext === "")) return "spz"; // gzip
  if (EXTENSIONS[ext]) return EXTENSIONS[ext];
  throw new Error(`${baseName(name)}: not a splat file the viewer reads (.spk, .ply, .splat, .spz, .sog)`);
}

/** Spark's file type for a format it decodes. */
export function sparkFileType(format) {
  switch (format) {
    case "ply":
      return SplatFileType.PLY;
    case "splat":
      return SplatFileType.SPLAT;
    case "spz":
      return SplatFileType.SPZ;
    case "sog":
      return SplatFileType.PCSOGSZIP;
    default:
      throw new Error(`Spark does not decode '${format}'`);
  }
}
