/** Moved to src/io/gc.ts (the dump's spills use it too). */
export { noteGarbage } from "../io/gc.ts";
