/** The NaraError a call throws or a promise rejects with (the test fails when there is none, or another kind). */
import { expect } from "bun:test";
import { NaraError } from "../../src/errors.ts";

export function thrown(fn: () => unknown): NaraError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(NaraError);
    return err as NaraError;
  }
  throw new Error("expected an error");
}

export async function rejection(p: Promise<unknown>): Promise<NaraError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(NaraError);
    return err as NaraError;
  }
  throw new Error("expected a rejection");
}
