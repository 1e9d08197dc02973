/**
 * A strict (RFC 8259) JSON parser that loses nothing Go's decoder looks at:
 * number literals stay text (ts is above 2^53), object members stay in
 * source order with duplicates (Go: the last one wins, after case folding),
 * and strings are decoded the way Go decodes them (a lone surrogate becomes
 * U+FFFD). Not a hot path: the dump scanner never parses events.
 */

export class JsonNumber {
  constructor(readonly text: string) {}
}
export type JsonMember = readonly [key: string, value: JsonValue];
export class JsonObject {
  constructor(
    readonly members: JsonMember[],
    /** Source offsets of the braces (end exclusive): `text.slice(start, end)` is the object's own text. */
    readonly start: number,
    readonly end: number,
  ) {}

  /** The value of the last member named `key` (exact match), as Go's map decoding keeps it. */
  get(key: string): JsonValue | undefined {
    for (let i = this.members.length - 1; i >= 0; i--) if (this.members[i]![0] === key) return this.members[i]![1];
    return undefined;
  }
}
export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | JsonObject;

export class JsonSyntaxError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`invalid JSON: ${message} at offset ${offset}`);
    this.name = "JsonSyntaxError";
  }
}

/** Go's decoder refuses deeper nesting too. */
const MAX_DEPTH = 10_000;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const HEX4 = /^[0-9a-fA-F]{4}$/;

export function parseJsonText(text: string): JsonValue {
  const p = new Parser(text);
  const value = p.value(0);
  p.skipWs();
  if (p.i < text.length) throw p.fail("unexpected data after the top-level value");
  return value;
}

class Parser {
  i = 0;
  constructor(readonly s: string) {}

  fail(message: string, at = this.i): JsonSyntaxError {
    return new JsonSyntaxError(message, at);
  }

  skipWs(): void {
    const s = this.s;
    let i = this.i;
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
    this.i = i;
  }

  value(depth: number): JsonValue {
    this.skipWs();
    const c = this.s.charCodeAt(this.i);
    switch (c) {
      case 0x22:
        return this.string();
      case 0x7b:
        return this.object(depth + 1);
      case 0x5b:
        return this.array(depth + 1);
      case 0x74:
        return this.literal("true", true);
      case 0x66:
        return this.literal("false", false);
      case 0x6e:
        return this.literal("null", null);
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
        throw this.fail(Number.isNaN(c) ? "unexpected end of input" : `unexpected character ${JSON.stringify(this.s[this.i])}`);
    }
  }

  literal<T>(word: string, value: T): T {
    if (!this.s.startsWith(word, this.i)) throw this.fail(`invalid literal (expected ${word})`);
    this.i += word.length;
    return value;
  }

  number(): JsonNumber {
    NUMBER.lastIndex = this.i;
    const m = NUMBER.exec(this.s);
    if (!m) throw this.fail("invalid number");
    this.i += m[0].length;
    return new JsonNumber(m[0]);
  }

  string(): string {
    const s = this.s;
    let i = this.i + 1;
    let from = i;
    let out = "";
    let surrogates = false;
    for (;;) {
      if (i >= s.length) throw this.fail("unterminated string", this.i);
      const c = s.charCodeAt(i);
      if (c === 0x22) break;
      if (c === 0x5c) {
        out += s.slice(from, i);
        const e = s[i + 1];
        let add: string;
        switch (e) {
          case '"':
          case "\\":
          case "/":
            add = e;
            break;
          case "b":
            add = "\b";
            break;
          case "f":
            add = "\f";
            break;
          case "n":
            add = "\n";
            break;
          case "r":
            add = "\r";
            break;
          case "t":
            add = "\t";
            break;
          case "u": {
            const hex = s.slice(i + 2, i + 6);
            if (!HEX4.test(hex)) throw this.fail("invalid \\u escape", i);
            const code = parseInt(hex, 16);
            if (code >= 0xd800 && code <= 0xdfff) surrogates = true;
            out += String.fromCharCode(code);
            i += 6;
            from = i;
            continue;
          }
          default:
            throw this.fail("invalid escape", i);
        }
        out += add;
        i += 2;
        from = i;
        continue;
      }
      if (c < 0x20) throw this.fail("control character in string", i);
      if (c >= 0xd800 && c <= 0xdfff) surrogates = true;
      i++;
    }
    out += s.slice(from, i);
    this.i = i + 1;
    // Go pairs surrogate escapes when it can and turns the rest into U+FFFD.
    return surrogates ? out.toWellFormed() : out;
  }

  object(depth: number): JsonObject {
    if (depth > MAX_DEPTH) throw this.fail("nesting too deep");
    const start = this.i++; // {
    const members: JsonMember[] = [];
    this.skipWs();
    if (this.s.charCodeAt(this.i) === 0x7d) {
      this.i++;
      return new JsonObject(members, start, this.i);
    }
    for (;;) {
      this.skipWs();
      if (this.s.charCodeAt(this.i) !== 0x22) throw this.fail("expected a string key");
      const key = this.string();
      this.skipWs();
      if (this.s.charCodeAt(this.i) !== 0x3a) throw this.fail("expected ':'");
      this.i++;
      members.push([key, this.value(depth)]);
      this.skipWs();
      const c = this.s.charCodeAt(this.i++);
      if (c === 0x7d) return new JsonObject(members, start, this.i);
      if (c !== 0x2c) throw this.fail("expected ',' or '}'", this.i - 1);
    }
  }

  array(depth: number): JsonValue[] {
    if (depth > MAX_DEPTH) throw this.fail("nesting too deep");
    this.i++; // [
    const items: JsonValue[] = [];
    this.skipWs();
    if (this.s.charCodeAt(this.i) === 0x5d) {
      this.i++;
      return items;
    }
    for (;;) {
      items.push(this.value(depth));
      this.skipWs();
      const c = this.s.charCodeAt(this.i++);
      if (c === 0x5d) return items;
      if (c !== 0x2c) throw this.fail("expected ',' or ']'", this.i - 1);
    }
  }
}
