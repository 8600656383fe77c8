/**
 * The lexer of the query language. It keeps only the current token in its own fields (no token
 * objects), so a parse allocates little more than the AST and the text of strings and words.
 */

export type TokenKind =
  | 'word' // a field name, a keyword (and, or, not, empty) or a word operator (startsWith, ...)
  | 'string' // '...' with '' inside for a quote
  | 'number' // 42, -8.5, +3, 0x1F
  | 'relative' // -10s, +1d
  | 'symbol' // = <> < <= > >=
  | '('
  | ')'
  | 'invalid' // anything else: a stray character, a malformed number such as 5abc, an unterminated string
  | 'end';

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isHexDigit = (c: number): boolean => isDigit(c) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
const isLetter = (c: number): boolean => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95;
const isSpace = (c: number): boolean => c === 32 || (c >= 9 && c <= 13);
/** Characters that continue a word; every non-ASCII one too, so an error shows the whole word. */
const isWordChar = (c: number): boolean => isLetter(c) || isDigit(c) || c === 46 || c > 127;

const UNIT_MILLISECONDS: Readonly<Record<string, number>> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

export class Lexer {
  kind: TokenKind = 'end';
  /** 0-based offsets of the current token in the text (UTF-16 units). */
  start = 0;
  end = 0;
  /** The unescaped text of a string token. */
  stringValue = '';
  /** The value of a number token, or the signed milliseconds of a relative token. */
  numberValue = 0;
  /** An unterminated string: the token runs to the end of the text. */
  unterminated = false;

  constructor(readonly text: string) {
    this.next();
  }

  /** The current token's source text. */
  get raw(): string {
    return this.text.slice(this.start, this.end);
  }

  /** Whether the current token is of `kind` (a method, so that TypeScript does not narrow across `next()`). */
  at(kind: TokenKind): boolean {
    return this.kind === kind;
  }

  /** Whether the current token is the word `keyword` (lower-case letters), in any case; allocates nothing. */
  isKeyword(keyword: string): boolean {
    if (this.kind !== 'word' || this.end - this.start !== keyword.length) return false;
    for (let i = 0; i < keyword.length; i++) {
      // Setting bit 0x20 lower-cases an ASCII letter; `keyword` holds only letters.
      if ((this.text.charCodeAt(this.start + i) | 0x20) !== keyword.charCodeAt(i)) return false;
    }
    return true;
  }

  next(): void {
    const text = this.text;
    let pos = this.end;
    while (pos < text.length && isSpace(text.charCodeAt(pos))) pos++;
    this.start = pos;
    this.kind = this.scan(pos);
  }

  /** Scans the token at `pos`: sets its end (and value) and answers its kind. */
  private scan(pos: number): TokenKind {
    const text = this.text;
    if (pos >= text.length) return this.token('end', pos);
    const c = text.charCodeAt(pos);
    const following = text.charCodeAt(pos + 1);
    switch (c) {
      case 40: // (
        return this.token('(', pos + 1);
      case 41: // )
        return this.token(')', pos + 1);
      case 61: // =
        return this.token('symbol', pos + 1);
      case 60: // < <= <>
        return this.token('symbol', following === 61 || following === 62 ? pos + 2 : pos + 1);
      case 62: // > >=
        return this.token('symbol', following === 61 ? pos + 2 : pos + 1);
      case 39: // '
        return this.string(pos);
    }
    if (isDigit(c) || ((c === 43 || c === 45) && isDigit(following))) return this.number(pos);
    if (isWordChar(c)) return this.token('word', this.skipWord(pos));
    // One stray character (a whole surrogate pair if it is one).
    return this.token('invalid', pos + (c >= 0xd800 && c <= 0xdbff && pos + 1 < text.length ? 2 : 1));
  }

  private token(kind: TokenKind, end: number): TokenKind {
    this.end = end;
    return kind;
  }

  private skipWord(pos: number): number {
    while (pos < this.text.length && isWordChar(this.text.charCodeAt(pos))) pos++;
    return pos;
  }

  private string(open: number): TokenKind {
    const text = this.text;
    let value = '';
    let from = open + 1;
    for (;;) {
      const close = text.indexOf("'", from);
      if (close < 0) {
        this.unterminated = true;
        return this.token('invalid', text.length);
      }
      value += text.slice(from, close);
      if (text.charCodeAt(close + 1) !== 39) {
        this.stringValue = value;
        return this.token('string', close + 1);
      }
      value += "'";
      from = close + 2;
    }
  }

  private number(begin: number): TokenKind {
    const text = this.text;
    const sign = text.charCodeAt(begin);
    let pos = sign === 43 || sign === 45 ? begin + 1 : begin;
    const digitsStart = pos;
    const x = text.charCodeAt(pos + 1);
    if (text.charCodeAt(pos) === 48 && (x === 120 || x === 88) && isHexDigit(text.charCodeAt(pos + 2))) {
      pos += 2;
      while (isHexDigit(text.charCodeAt(pos))) pos++;
      const magnitude = Number.parseInt(text.slice(digitsStart + 2, pos), 16);
      return this.numberEnd(
        begin,
        pos,
        sign === 45 ? -magnitude : magnitude,
        Number.isSafeInteger(magnitude),
      );
    }
    while (isDigit(text.charCodeAt(pos))) pos++;
    const unit = text.charAt(pos).toLowerCase();
    const milliseconds = UNIT_MILLISECONDS[unit];
    if (digitsStart !== begin && milliseconds !== undefined && !isWordChar(text.charCodeAt(pos + 1))) {
      const amount = Number(text.slice(digitsStart, pos)) * milliseconds;
      this.numberValue = sign === 45 ? -amount : amount;
      return this.token(Number.isSafeInteger(amount) ? 'relative' : 'invalid', pos + 1);
    }
    if (text.charCodeAt(pos) === 46 && isDigit(text.charCodeAt(pos + 1))) {
      pos += 2;
      while (isDigit(text.charCodeAt(pos))) pos++;
    }
    const value = Number(text.slice(begin, pos));
    return this.numberEnd(begin, pos, value, Number.isFinite(value));
  }

  /** A number directly followed by word characters (`5abc`, `1.2.3`) is one invalid token. */
  private numberEnd(begin: number, pos: number, value: number, representable: boolean): TokenKind {
    if (pos < this.text.length && isWordChar(this.text.charCodeAt(pos))) {
      this.start = begin;
      return this.token('invalid', this.skipWord(pos));
    }
    this.numberValue = value;
    return this.token(representable ? 'number' : 'invalid', pos);
  }
}
