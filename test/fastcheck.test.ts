/**
 * The fast check walks a line once for both the JSON grammar and the Go
 * types (src/events/fastcheck.ts): whatever it answers must be what
 * parseEvent (slowCheck) answers, for malformed JSON too, and it must never
 * read past the line's end (a held input has the next line right after).
 */
import { describe, expect, test } from "bun:test";
import { isUtf8 } from "node:buffer";
import { fastCheck } from "../src/events/fastcheck.ts";
import { slowCheck, validateLine } from "../src/events/validate.ts";
import { generateEvents, generateNaras, Rng } from "./sim/generate.ts";

const enc = new TextEncoder();
const fast = (line: string) => {
  const b = enc.encode(line);
  return fastCheck(b, 0, b.length);
};

/** Where the fast check answers, it agrees with the reference; where the reference refuses, the fast check never answers. */
function agrees(line: string): boolean {
  const f = fast(line);
  const slow = slowCheck(line, false);
  if (f === null) return false;
  if (!slow.ok) throw new Error(`fast path accepted what parseEvent refuses: ${line}: ${slow.reason}`);
  expect({ id: f.id, ts: f.tsText, svc: f.svc, signed: f.signed }).toEqual({ id: slow.id, ts: slow.tsText, svc: slow.svc, signed: slow.signed });
  return true;
}

describe("the fast check's grammar", () => {
  test("malformed JSON is never answered", () => {
    const ok = '{"id":"a","ts":1,"svc":"zine"}';
    expect(agrees(ok)).toBe(true);
    for (const line of [
      '{"id":"a","ts":1,"svc":"zine",}', // trailing comma
      '{"id":"a","ts":1,,"svc":"zine"}',
      '{"id":"a" "ts":1}',
      '{"id":"a","ts" 1}',
      '{"id":"a","ts":01}', // leading zero
      '{"id":"a","ts":1,"svc":"zine","x":1.}',
      '{"id":"a","ts":1,"svc":"zine","x":.5}',
      '{"id":"a","ts":1,"svc":"zine","x":1e}',
      '{"id":"a","ts":1,"svc":"zine","x":-}',
      '{"id":"a","ts":1,"svc":"zine","x":+1}',
      '{"id":"a","ts":1,"svc":"zine","x":tru}',
      '{"id":"a","ts":1,"svc":"zine","x":nul}',
      '{"id":"a","ts":1,"svc":"zine","x":True}',
      '{"id":"a","ts":1,"svc":"zine","x":[1,]}',
      '{"id":"a","ts":1,"svc":"zine","x":[1 2]}',
      '{"id":"a","ts":1,"svc":"zine","x":{"a"}}',
      '{"id":"a","ts":1,"svc":"zine","x":{"a":1,}}',
      '{"id":"a","ts":1,"svc":"zine","x":{1:1}}',
      '{"id":"a","ts":1,"svc":"zine","x":"\\x"}', // bad escape
      '{"id":"a","ts":1,"svc":"zine","x":"\\u12g4"}',
      '{"id":"a","ts":1,"svc":"zine","x":"a\tb"}', // raw control character
      '{"id":"a\u0001","ts":1,"svc":"zine"}',
      '{"id":"a","ts":1,"svc":"zine","x":"unterminated}',
      '{"id":"a","ts":1,"svc":"zine"', // unclosed
      '{"id":"a","ts":1,"svc":"zine"}}',
      '{"id":"a","ts":1,"svc":"zine"} x',
      '{"id":"a","ts":1,"svc":"zine"}{}',
      '{"id":"a","ts":1,"svc":"ping","ping":{"rtt":1,}}',
      '{"id":"a","ts":1,"svc":"checkpoint","checkpoint":{"voter_ids":["a",]}}',
      '{"id":"a","ts":1,"svc":"checkpoint","checkpoint":{"voter_ids":["a" "b"]}}',
      `{"id":"a","ts":1,"svc":"zine","x":${"[".repeat(100)}${"]".repeat(100)}}`, // deeper than the fast path goes
    ]) {
      expect([line, fast(line)]).toEqual([line, null]);
    }
    // Whitespace is fine anywhere between tokens, escapes in values too.
    expect(agrees(' { "id" : "a" ,\t"ts":\r1, "svc":"zine", "x" : [ 1 , { "k\\n\\u00e9" : null } , -0.5e+3 ] }  ')).toBe(true);
    expect(agrees('{"id":"a","ts":-9223372036854775808,"svc":"zine"}')).toBe(true);
    expect(fast('{"id":"a","ts":-9223372036854775809,"svc":"zine"}')).toBeNull();
    expect(fast('{"id":"a","ts":9223372036854775808,"svc":"zine"}')).toBeNull();
    expect(agrees('{"id":"a","ts":1,"svc":"observation","observation":{"observer_uptime":18446744073709551615}}')).toBe(true);
    expect(fast('{"id":"a","ts":1,"svc":"observation","observation":{"observer_uptime":18446744073709551616}}')).toBeNull();
  });

  test("never past the line's end: the next line's bytes do not complete it", () => {
    const line = '{"id":"a","ts":1,"svc":"zine","x":[1,';
    const next = '2]}';
    for (const sep of ["\n", "\r\n", " \n"]) {
      const b = enc.encode(`${line}${sep}${next}\n`);
      expect(fastCheck(b, 0, line.length)).toBeNull();
      expect(validateLine(b, 0, line.length).ok).toBe(false);
    }
    const whole = '{"id":"a","ts":1,"svc":"zine"}';
    const b = enc.encode(`${whole}\r\n${whole}\n`);
    expect(fastCheck(b, 0, whole.length)).toMatchObject({ id: "a", svc: "zine" });
    // A line whose end is cut mid-token is not taken for the longer token after it.
    const cut = enc.encode('{"id":"a","ts":12,"svc":"zine"}');
    expect(fastCheck(cut, 0, 16)).toBeNull();
  });

  test("random damage to real events: the fast check answers only what the reference accepts, the same way", () => {
    const naras = generateNaras(3, 8);
    const events = generateEvents({ naras, count: 400, seed: 8, unknownRate: 0.05 });
    const rng = new Rng(1234);
    const pieces = ['"', "\\", ",", ":", "{", "}", "[", "]", "0", "-", ".", "e", "n", "t", " ", "\\u", "1", "a", "\u00e9"];
    let answered = 0;
    let refused = 0;
    for (const e of events) {
      for (let m = 0; m < 12; m++) {
        let line = e.raw;
        for (let d = 0; d <= rng.int(3); d++) {
          const at = rng.int(line.length);
          const what = rng.int(3);
          if (what === 0) line = line.slice(0, at) + line.slice(at + 1);
          else if (what === 1) line = line.slice(0, at) + pieces[rng.int(pieces.length)] + line.slice(at);
          else line = line.slice(0, at) + pieces[rng.int(pieces.length)] + line.slice(at + 1);
        }
        if (agrees(line)) answered++;
        else if (!slowCheck(line, false).ok) refused++;
      }
    }
    // Both kinds occur often enough for the comparison to mean something.
    expect(answered).toBeGreaterThan(500);
    expect(refused).toBeGreaterThan(1000);
  });
});

describe("the fast check's UTF-8", () => {
  const line = (inner: number[]) => new Uint8Array([...enc.encode('{"id":"a","ts":1,"svc":"zine","emitter":"'), ...inner, ...enc.encode('"}')]);
  test("strict, as isUtf8: overlong forms, surrogates, truncated and stray bytes are never answered", () => {
    const good = [[0xc3, 0xa9], [0xe2, 0x82, 0xac], [0xf0, 0x9f, 0x98, 0x80], [0xed, 0x9f, 0xbf], [0xf4, 0x8f, 0xbf, 0xbf], [0xe0, 0xa0, 0x80], [0xf0, 0x90, 0x80, 0x80]];
    const bad = [[0xc0, 0xaf], [0xc1, 0xbf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xf0, 0x8f, 0xbf, 0xbf], [0xf4, 0x90, 0x80, 0x80], [0xf5, 0x80, 0x80, 0x80], [0x80], [0xbf], [0xff], [0xc3], [0xe2, 0x82], [0xf0, 0x9f, 0x98], [0xc3, 0x41]];
    for (const g of good) {
      const b = line(g);
      expect([g, fastCheck(b, 0, b.length)?.id]).toEqual([g, "a"]);
    }
    for (const x of bad) {
      const b = line(x);
      expect([x, fastCheck(b, 0, b.length)]).toEqual([x, null]);
      expect(validateLine(b, 0, b.length)).toMatchObject({ ok: false, reason: expect.stringContaining("UTF-8") });
    }
  });

  test("random bytes in a string: answered exactly when the line is valid UTF-8", () => {
    const rng = new Rng(77);
    let valid = 0;
    for (let n = 0; n < 3000; n++) {
      const inner = Array.from({ length: 1 + rng.int(6) }, () => (rng.int(4) === 0 ? 0x41 : 0x80 + rng.int(0x80)));
      const b = line(inner);
      const f = fastCheck(b, 0, b.length);
      const utf8 = isUtf8(b);
      expect([inner, f !== null]).toEqual([inner, utf8]);
      if (utf8) valid++;
    }
    expect(valid).toBeGreaterThan(100);
  });
});
