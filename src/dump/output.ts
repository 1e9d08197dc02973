/** Moved to src/io/output.ts (compression and encryption live there too). */
export { openOutput, type Output, type OutputOptions, type Compression } from "../io/output.ts";
