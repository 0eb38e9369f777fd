// Binary arrays from Python: `{buffer, dtype, shape}` -> `{data: TypedArray, shape}`.
// The buffer arrives as a DataView (ipywidgets), an ArrayBuffer or a typed array. Typed arrays need
// their byte offset to be a multiple of the element size; a misaligned buffer is copied once.

const TYPES = {
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  float32: Float32Array,
  float64: Float64Array,
};

/** Decode one serialized array. Throws with the reason when the payload is malformed. */
export function unpack(payload) {
  if (!payload || payload.buffer == null) throw new Error("expected a binary array {buffer, dtype, shape}");
  const Type = TYPES[payload.dtype];
  if (!Type) throw new Error(`unsupported dtype ${payload.dtype}`);
  const shape = payload.shape ?? [];
  const raw = payload.buffer;
  const bytes = raw instanceof ArrayBuffer ? new Uint8Array(raw) : new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
  const aligned = bytes.byteOffset % Type.BYTES_PER_ELEMENT === 0 ? bytes : bytes.slice();
  const data = new Type(aligned.buffer, aligned.byteOffset, aligned.byteLength / Type.BYTES_PER_ELEMENT);
  const expected = shape.reduce((a, b) => a * b, 1);
  if (data.length !== expected) throw new Error(`array has ${data.length} items, shape [${shape}] needs ${expected}`);
  return { data, shape };
}

/** Exclusive prefix sums: counts [n] -> offsets [n + 1]. */
export function offsets(counts) {
  const out = new Int32Array(counts.length + 1);
  for (let i = 0; i < counts.length; i++) out[i + 1] = out[i] + counts[i];
  return out;
}
