/** Moved to src/io/tempfile.ts (the dump's spills and stdout spool use it too). */
export { SEAL_BLOCK, SealedReader, SealedWriter, TempSealer } from "../io/tempfile.ts";
