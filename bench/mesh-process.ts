/**
 * bench/serve-mesh.ts in a process of its own (its serving does not share the
 * client's cores' event loop): resolves once it printed its JSON line.
 */
import { join } from "node:path";

export type MeshProcess = {
  /** The JSON line, as the clients take it. */
  line: string;
  /** The line parsed. */
  info: Record<string, unknown>;
  stop(): void;
};

export async function spawnMesh(args: string[]): Promise<MeshProcess> {
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, "serve-mesh.ts"), ...args], { stdout: "pipe", stderr: "inherit" });
  const reader = proc.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("mesh process ended early");
    text += new TextDecoder().decode(value);
  }
  const line = text.slice(0, text.indexOf("\n"));
  return { line, info: JSON.parse(line) as Record<string, unknown>, stop: () => proc.kill() };
}
