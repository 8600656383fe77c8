import { createHmac } from 'node:crypto';
import { badRequest } from '../model/error.js';
import { constantTimeEqual } from '../security/hashing.js';
import type { Keyset } from '../store/store.js';

/** What a cursor is only valid for: the same account, list, job, query and order. */
export interface CursorBinding {
  accountId: number;
  resource: string;
  jobId: number | null;
  /** The normalized (serialized) query, '' for none. */
  query: string;
  orderField: string;
  direction: string;
}

const invalid = () =>
  badRequest('Invalid cursor: it is malformed, or was made for another query, orderby or list');

const isSortValue = (value: unknown): value is string | number | null =>
  value === null || typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value));

/**
 * Opaque keyset cursors: base64url of the last position seen, plus an HMAC-SHA256 (keyed with a
 * secret kept in the store, so cursors outlive restarts) over that position and its binding.
 */
export class CursorCodec {
  constructor(private readonly secret: Buffer) {}

  encode(binding: CursorBinding, position: Keyset): string {
    const body = Buffer.from(JSON.stringify([position.value, position.key])).toString('base64url');
    return `${body}.${this.sign(binding, body).toString('base64url')}`;
  }

  decode(binding: CursorBinding, cursor: string): Keyset {
    const [body, signature, ...rest] = cursor.split('.');
    if (body === undefined || signature === undefined || rest.length > 0) throw invalid();
    if (!constantTimeEqual(Buffer.from(signature, 'base64url'), this.sign(binding, body))) throw invalid();
    let position: unknown;
    try {
      position = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      throw invalid();
    }
    if (!Array.isArray(position) || position.length !== 2) throw invalid();
    const [value, key] = position as unknown[];
    if (!isSortValue(value) || (typeof key !== 'string' && typeof key !== 'number')) throw invalid();
    return { value, key };
  }

  private sign(binding: CursorBinding, body: string): Buffer {
    const bound = JSON.stringify([
      binding.accountId,
      binding.resource,
      binding.jobId,
      binding.query,
      binding.orderField,
      binding.direction,
      body,
    ]);
    return createHmac('sha256', this.secret).update(bound).digest();
  }
}
