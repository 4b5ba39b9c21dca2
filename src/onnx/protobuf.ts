/**
 * A minimal protobuf *writer* (no reader): just the wire types ONNX's ModelProto needs.
 * Hand-rolled so the package has no protobuf dependency (docs/runtime.md §2).
 *
 * Why BigInt for int64: negative int64 values (e.g. `axis = -1`) must be encoded as 10-byte
 * two's-complement varints; JS numbers lose that above 2^53 and bit ops truncate to 32 bits.
 */

const textEncoder = new TextEncoder();

/** Appends protobuf fields to a growable byte buffer. */
export class ProtoWriter {
  private buf = new Uint8Array(256);
  private len = 0;

  private ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  private byte(b: number): void {
    this.ensure(1);
    this.buf[this.len++] = b;
  }

  /** Unsigned or signed varint; negative values become 10-byte two's complement. */
  varint(value: number | bigint): void {
    let v = BigInt(value);
    if (v < 0n) v = BigInt.asUintN(64, v);
    while (v >= 0x80n) {
      this.byte(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.byte(Number(v));
  }

  private tag(field: number, wireType: number): void {
    this.varint((field << 3) | wireType);
  }

  /** int32/int64/enum/bool field (wire type 0). */
  int(field: number, value: number | bigint): void {
    this.tag(field, 0);
    this.varint(value);
  }

  /** float field (wire type 5, fixed32 little-endian). */
  float(field: number, value: number): void {
    this.tag(field, 5);
    this.ensure(4);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 4).setFloat32(0, value, true);
    this.len += 4;
  }

  /** bytes field (wire type 2). */
  bytes(field: number, value: Uint8Array): void {
    this.tag(field, 2);
    this.varint(value.length);
    this.ensure(value.length);
    this.buf.set(value, this.len);
    this.len += value.length;
  }

  /** string field (UTF-8, wire type 2). */
  string(field: number, value: string): void {
    this.bytes(field, textEncoder.encode(value));
  }

  /** Embedded message field: `fill` writes the sub-message's fields. */
  message(field: number, fill: (w: ProtoWriter) => void): void {
    const sub = new ProtoWriter();
    fill(sub);
    this.bytes(field, sub.finish());
  }

  /** Packed repeated varints (accepted by ORT and protobufjs for proto2 repeated int64). */
  packedInts(field: number, values: ReadonlyArray<number | bigint>): void {
    const sub = new ProtoWriter();
    for (const v of values) sub.varint(v);
    this.bytes(field, sub.finish());
  }

  /** Packed repeated floats (fixed32). */
  packedFloats(field: number, values: ReadonlyArray<number>): void {
    const data = new Uint8Array(values.length * 4);
    const dv = new DataView(data.buffer);
    values.forEach((v, i) => dv.setFloat32(i * 4, v, true));
    this.bytes(field, data);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}
