type Growable = Float64Array | Int32Array | Uint32Array | Uint8Array;

/** A copy of `a` with room for `size` elements: the growth step of the append-only typed arrays on the hot paths. */
export function grown<T extends Growable>(a: T, size: number): T {
  const next = new (a.constructor as new (n: number) => T)(size);
  next.set(a);
  return next;
}
