/**
 * Go's number formatting where it reaches the wire: `%.1f` in ping content
 * strings (part of event IDs and signatures) and float64 values written by
 * encoding/json.
 */

const bits = new DataView(new ArrayBuffer(8));

/**
 * Go's `fmt.Sprintf("%.1f", x)`: the exact binary value of `x`, rounded half
 * to even to one decimal. JavaScript's `toFixed` breaks exact ties upwards
 * (0.25 → "0.3", Go says "0.2") and switches to exponent form at 1e21, so the
 * value is taken apart and rounded in integer arithmetic instead.
 */
export function formatGoFixed1(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (x === Infinity) return "+Inf";
  if (x === -Infinity) return "-Inf";
  bits.setFloat64(0, x);
  const hi = bits.getUint32(0);
  const lo = bits.getUint32(4);
  const sign = hi >>> 31 === 1 ? "-" : ""; // Go keeps the sign of -0 and of negatives that round to 0
  const biased = (hi >>> 20) & 0x7ff;
  let mantissa = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let exponent = -1074; // subnormal
  if (biased !== 0) {
    mantissa |= 1n << 52n;
    exponent = biased - 1075;
  }
  // |x| = mantissa * 2^exponent; we want round_half_even(|x| * 10).
  let tenths: bigint;
  if (exponent >= 0) {
    tenths = (mantissa << BigInt(exponent)) * 10n;
  } else {
    const k = BigInt(-exponent);
    const scaled = mantissa * 10n;
    const q = scaled >> k;
    const rest = scaled - (q << k);
    const half = 1n << (k - 1n);
    tenths = rest > half || (rest === half && (q & 1n) === 1n) ? q + 1n : q;
  }
  const digits = tenths.toString();
  const whole = digits.length > 1 ? digits.slice(0, -1) : "0";
  return `${sign}${whole}.${digits[digits.length - 1]}`;
}

/**
 * A float64 as Go's encoding/json writes it: shortest round-trip digits,
 * plain decimal for 1e-6 <= |x| < 1e21 and exponent form outside
 * ("1e-7", "5e-324", "1e+21" after Go's cleanup of "e-07"), and "-0" for
 * negative zero. ECMAScript's Number::toString uses the same shortest digits,
 * the same two thresholds and the same exponent spelling, so only -0 differs.
 * NaN and infinities are errors in Go (UnsupportedValueError), so here too.
 */
export function goJsonNumber(x: number): string {
  if (!Number.isFinite(x)) throw new RangeError(`json: unsupported value: ${x}`);
  if (x === 0 && 1 / x < 0) return "-0";
  return String(x);
}
