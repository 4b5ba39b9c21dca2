/**
 * The part of the ZIP format PyTorch's `torch.save` writes (docs/camera-motion.md, "Reading .ckpt"): a central
 * directory (ZIP64 when the archive passes 4 GiB or 65535 entries) and entries that are STORED, so a tensor's
 * bytes sit uncompressed in the file and a graph can point at them in place, like safetensors.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { CheckpointError } from '../errors.js';

export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflated. */
  method: number;
  compressedSize: number;
  size: number;
  /** Absolute offset of the entry's data (after its local header). */
  dataOffset: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

function readAt(fd: number, position: number, length: number, file: string): Buffer {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0)
      throw new CheckpointError(file, `unexpected end of file at byte ${position + done} (truncated download?)`);
    done += n;
  }
  return buf;
}

const u64 = (b: Buffer, at: number): number => Number(b.readBigUInt64LE(at));

/** Lists the entries of a ZIP archive. Throws CheckpointError naming the file when it is not one or is cut short. */
export function readZipDirectory(file: string): Map<string, ZipEntry> {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const tailLength = Math.min(size, 22 + 0xffff);
    const tail = readAt(fd, size - tailLength, tailLength, file);
    let eocd = -1;
    for (let i = tailLength - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === EOCD) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw new CheckpointError(file, 'not a ZIP archive (no end-of-central-directory record)');
    let count = tail.readUInt16LE(eocd + 10);
    let cdSize = tail.readUInt32LE(eocd + 12);
    let cdOffset = tail.readUInt32LE(eocd + 16);
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      const locatorAt = size - tailLength + eocd - 20;
      const locator = locatorAt >= 0 ? readAt(fd, locatorAt, 20, file) : undefined;
      if (!locator || locator.readUInt32LE(0) !== ZIP64_LOCATOR)
        throw new CheckpointError(file, 'ZIP64 archive without its locator record');
      const rec = readAt(fd, u64(locator, 8), 56, file);
      if (rec.readUInt32LE(0) !== ZIP64_EOCD)
        throw new CheckpointError(file, 'corrupt ZIP64 end-of-central-directory record');
      count = u64(rec, 32);
      cdSize = u64(rec, 40);
      cdOffset = u64(rec, 48);
    }
    if (cdOffset + cdSize > size)
      throw new CheckpointError(
        file,
        `central directory ends at byte ${cdOffset + cdSize} but the file has ${size} (truncated)`,
      );
    const cd = readAt(fd, cdOffset, cdSize, file);
    const entries = new Map<string, ZipEntry>();
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cd.length || cd.readUInt32LE(p) !== CENTRAL)
        throw new CheckpointError(file, `corrupt central directory at entry ${i}`);
      const method = cd.readUInt16LE(p + 10);
      let compressedSize = cd.readUInt32LE(p + 20);
      let uncompressed = cd.readUInt32LE(p + 24);
      const nameLength = cd.readUInt16LE(p + 28);
      const extraLength = cd.readUInt16LE(p + 30);
      const commentLength = cd.readUInt16LE(p + 32);
      let localOffset = cd.readUInt32LE(p + 42);
      const name = cd.toString('utf8', p + 46, p + 46 + nameLength);
      // ZIP64 extended information (id 1) holds, in this order, only the fields that overflowed
      let e = p + 46 + nameLength;
      const extraEnd = e + extraLength;
      while (e + 4 <= extraEnd) {
        const id = cd.readUInt16LE(e);
        const len = cd.readUInt16LE(e + 2);
        if (id === 1) {
          let q = e + 4;
          if (uncompressed === 0xffffffff) {
            uncompressed = u64(cd, q);
            q += 8;
          }
          if (compressedSize === 0xffffffff) {
            compressedSize = u64(cd, q);
            q += 8;
          }
          if (localOffset === 0xffffffff) {
            localOffset = u64(cd, q);
            q += 8;
          }
        }
        e += 4 + len;
      }
      const local = readAt(fd, localOffset, 30, file);
      if (local.readUInt32LE(0) !== LOCAL) throw new CheckpointError(file, `entry ${name}: corrupt local header`);
      const dataOffset = localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
      if (dataOffset + compressedSize > size) {
        throw new CheckpointError(
          file,
          `entry ${name} ends at byte ${dataOffset + compressedSize} but the file has ${size} (truncated)`,
        );
      }
      entries.set(name, { name, method, compressedSize, size: uncompressed, dataOffset });
      p = extraEnd + commentLength;
    }
    return entries;
  } finally {
    closeSync(fd);
  }
}

/** Reads one (small) entry whole, inflating it if it is deflated. */
export function readZipEntry(file: string, entry: ZipEntry): Buffer {
  if (entry.method !== 0 && entry.method !== 8) {
    throw new CheckpointError(
      file,
      `entry ${entry.name}: compression method ${entry.method} is not supported (stored or deflated only)`,
    );
  }
  const fd = openSync(file, 'r');
  try {
    const raw = readAt(fd, entry.dataOffset, entry.compressedSize, file);
    return entry.method === 8 ? inflateRawSync(raw) : raw;
  } finally {
    closeSync(fd);
  }
}
