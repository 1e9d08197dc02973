/**
 * How far the dump has got, as a ts floor: what the fetchers report, the
 * coordinator combines and the collector drains below. Its own module so
 * that fetching does not depend on the collector.
 */

import { compareSplitTs } from "../events/order.ts";
import type { TsFloor } from "../events/heldruns.ts";

export type { TsFloor };
export const BEFORE_ALL: TsFloor = { hi: -Infinity, lo: 0 };
export const AFTER_ALL: TsFloor = { hi: Infinity, lo: 0 };
/** Is floor `a` lower than floor `b`? */
export const lowerFloor = (a: TsFloor, b: TsFloor): boolean => compareSplitTs(a.hi, a.lo, b.hi, b.lo) < 0;
