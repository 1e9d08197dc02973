/**
 * How far the dump has got, as a ts floor: what the fetchers report, the
 * coordinator combines and the collector drains below. Its own module so
 * that fetching does not depend on the collector.
 */

/** A timestamp as the exact (hi, lo) halves of `splitTsInto`; ±Infinity for "before/after everything". */
export type TsFloor = { hi: number; lo: number };
export const BEFORE_ALL: TsFloor = { hi: -Infinity, lo: 0 };
export const AFTER_ALL: TsFloor = { hi: Infinity, lo: 0 };
/** Is floor `a` lower than floor `b`? */
export const lowerFloor = (a: TsFloor, b: TsFloor): boolean => a.hi < b.hi || (a.hi === b.hi && a.lo < b.lo);
