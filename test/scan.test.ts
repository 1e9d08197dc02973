import { describe, expect, test } from "bun:test";
import {
  EventFlag,
  ScanError,
  compactJson,
  idKey,
  newEventFields,
  scanEventLine,
  scanSyncPage,
  splitTsInto,
} from "../src/events/scan.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const vectors = (await Bun.file(new URL("../../shared/vectors/event_ids.json", import.meta.url)).json()) as {
  cases: { name: string; json: string; ts_decimal: string; id: string; signed: boolean }[];
};

function page(events: string[], extra = `,"next_cursor":"5"`): Uint8Array {
  return enc.encode(`{"from":"bob","events":[${events.join(",")}]${extra},"ts":1767225600,"sig":"c2ln"}\n`);
}

describe("scanSyncPage", () => {
  test("finds every vector event's exact bytes, id and ts text", () => {
    const raws = vectors.cases.map((c) => c.json);
    const b = page(raws);
    const p = scanSyncPage(b);
    expect(p.count).toBe(raws.length);
    expect(p.from).toBe("bob");
    expect(p.nextCursor).toBe("5");
    expect(p.tsText).toBe("1767225600");
    expect(p.sig).toBe("c2ln");
    for (let i = 0; i < p.count; i++) {
      const c = vectors.cases[i]!;
      expect(dec.decode(b.subarray(p.start[i]!, p.end[i]!))).toBe(c.json);
      expect(dec.decode(b.subarray(p.idStart[i]!, p.idEnd[i]!))).toBe(c.id);
      expect(dec.decode(b.subarray(p.tsStart[i]!, p.tsEnd[i]!))).toBe(c.ts_decimal);
      expect((p.flags[i]! & EventFlag.signed) !== 0).toBe(c.signed);
    }
  });

  test("events null and missing next_cursor mean the end", () => {
    const p = scanSyncPage(enc.encode(`{"from":"bob","events":null,"ts":1,"sig":""}\n`));
    expect(p.eventsNull).toBe(true);
    expect(p.count).toBe(0);
    expect(p.nextCursor).toBeUndefined();
    const q = scanSyncPage(enc.encode(`{"from":"bob","events":[],"ts":1}`));
    expect(q.eventsNull).toBe(false);
    expect(q.count).toBe(0);
  });

  test("field order, whitespace and unknown fields do not matter", () => {
    const b = enc.encode(
      ` { "extra" : {"a":[1,2,{"}":"]"}]}, "events" : [ {"svc":"x","ts" : 12,"zz":"{\\"","id":"ab"} ] , "from":"c" }`,
    );
    const p = scanSyncPage(b);
    expect(p.count).toBe(1);
    expect(dec.decode(b.subarray(p.idStart[0]!, p.idEnd[0]!))).toBe("ab");
    expect(dec.decode(b.subarray(p.tsStart[0]!, p.tsEnd[0]!))).toBe("12");
  });

  test.each([
    ["truncated in an event", `{"from":"b","events":[{"id":"a","ts":1},{"id":"b","t`],
    ["truncated after the array", `{"from":"b","events":[{"id":"a","ts":1}]`],
    ["not JSON", `<html>502 Bad Gateway</html>`],
    ["empty", ``],
    ["trailing garbage", `{"events":[]} x`],
    ["bad literal", `{"events":[{"id":"a","ts":1,"x":nul}]}`],
    ["raw control char in a string", `{"events":[{"id":"a\u0001","ts":1}]}`],
    ["bad number", `{"events":[{"id":"a","ts":01}]}`],
    ["missing comma", `{"events":[{"id":"a" "ts":1}]}`],
    ["event that is not an object", `{"events":[1]}`],
  ])("rejects a body that is %s", (_, body) => {
    expect(() => scanSyncPage(enc.encode(body))).toThrow(ScanError);
  });

  test("flags events without id, with a non-integer ts, or spanning lines", () => {
    const b = page([`{"ts":1,"svc":"x"}`, `{"id":"a","ts":1.5}`, `{"id":"b","ts":"7"}`, `{"id":"c",\n"ts":3}`]);
    const p = scanSyncPage(b);
    expect(p.flags[0]! & EventFlag.noId).toBeTruthy();
    expect(p.flags[1]! & EventFlag.badTs).toBeTruthy();
    expect(p.flags[2]! & EventFlag.badTs).toBeTruthy();
    expect(p.flags[3]! & EventFlag.multiline).toBeTruthy();
    expect(p.flags[3]! & (EventFlag.noId | EventFlag.badTs)).toBe(0);
  });

  test("signed needs both a non-empty sig and an emitter", () => {
    const p = scanSyncPage(
      page([
        `{"id":"a","ts":1,"emitter":"x","sig":"s"}`,
        `{"id":"b","ts":1,"emitter":"x","sig":""}`,
        `{"id":"c","ts":1,"sig":"s"}`,
      ]),
    );
    expect([...p.flags.subarray(0, 3)].map((f) => f & EventFlag.signed)).toEqual([EventFlag.signed, 0, 0]);
  });
});

describe("event keys and timestamps", () => {
  test("ts above 2^53 splits into exact halves that sort like the integer", () => {
    const texts = ["1767225600123456789", "1767225600123456790", "1767225600123456788", "999", "-1500000000", "0"];
    const b = enc.encode(texts.join(" "));
    const hi = new Float64Array(texts.length);
    const lo = new Float64Array(texts.length);
    let at = 0;
    texts.forEach((t, i) => {
      splitTsInto(b, at, at + t.length, hi, lo, i);
      at += t.length + 1;
    });
    expect([hi[0], lo[0]]).toEqual([1767225600, 123456789]);
    const order = texts.map((_, i) => i).sort((a, c) => hi[a]! - hi[c]! || lo[a]! - lo[c]!);
    const expected = texts.map((t, i) => [BigInt(t), i] as const).sort((a, c) => (a[0] < c[0] ? -1 : 1)).map((x) => x[1]);
    expect(order).toEqual(expected);
  });

  test("escaped ids decode to the same key as plain ones", () => {
    const b = enc.encode(`"abc" "\\u0061bc" "a\\"b" "a\\nb"`);
    expect(idKey(b, 1, 4, false)).toBe("abc");
    expect(idKey(b, 7, 15, true)).toBe("abc");
    expect(idKey(b, 18, 22, true)).toBe(JSON.stringify('a"b'));
    expect(idKey(b, 25, 29, true)).toBe(JSON.stringify("a\nb"));
  });

  test("a JSON Lines line holds exactly one event", () => {
    const b = enc.encode(`{"id":"a","ts":5}  `);
    const f = newEventFields();
    scanEventLine(b, 0, b.length, f);
    expect(dec.decode(b.subarray(f.tsStart, f.tsEnd))).toBe("5");
    const bad = enc.encode(`{"id":"a","ts":5} {"id":"b"}`);
    expect(() => scanEventLine(bad, 0, bad.length, f)).toThrow(ScanError);
  });

  test("compactJson removes only whitespace outside strings", () => {
    const raw = `{ "id" : "a b\\" c",\n "ts":\t1 }`;
    expect(dec.decode(compactJson(enc.encode(raw)))).toBe(`{"id":"a b\\" c","ts":1}`);
  });
});
