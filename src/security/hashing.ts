import { createHash, pbkdf2Sync, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/** Compares two byte strings in time that does not depend on where they differ. */
export const constantTimeEqual = (a: Buffer, b: Buffer): boolean =>
  a.length === b.length && timingSafeEqual(a, b);

/** A random secret of 32 bytes, URL-safe base64 (43 characters). */
export const randomSecret = (): string => randomBytes(32).toString('base64url');

/** A random identifier: 16 bytes as 32 hex digits. */
export const randomId = (): string => randomBytes(16).toString('hex');

// ---- passwords: scrypt, stored as scrypt$N$r$p$salt$hash ----

const SCRYPT = { N: 16384, r: 8, p: 1, keyLength: 32 };

const scryptAsync = (password: string, salt: Buffer, N: number, r: number, p: number, length: number) =>
  new Promise<Buffer>((resolve, reject) =>
    scrypt(password, salt, length, { N, r, p, maxmem: 256 * N * r }, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  );

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, SCRYPT.N, SCRYPT.r, SCRYPT.p, SCRYPT.keyLength);
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64'), key.toString('base64')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !n || !r || !p || salt === undefined || hash === undefined) return false;
  const expected = Buffer.from(hash, 'base64');
  const key = await scryptAsync(
    password,
    Buffer.from(salt, 'base64'),
    Number(n),
    Number(r),
    Number(p),
    expected.length,
  );
  return constantTimeEqual(key, expected);
}

// ---- API-key secrets: random, so a plain SHA-256 is enough ----

export const hashApiSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');

export const verifyApiSecret = (secret: string, storedHex: string): boolean =>
  constantTimeEqual(Buffer.from(hashApiSecret(secret), 'hex'), Buffer.from(storedHex, 'hex'));

// ---- device tokens: Mosquitto's PBKDF2-SHA512 format ($7$iterations$salt$hash), so an external
// Mosquitto (with a password file) can verify the same hashes ----

const PBKDF2 = { iterations: 101, saltLength: 12, keyLength: 64, digest: 'sha512' };

export function hashDeviceToken(token: string): string {
  const salt = randomBytes(PBKDF2.saltLength);
  const key = pbkdf2Sync(token, salt, PBKDF2.iterations, PBKDF2.keyLength, PBKDF2.digest);
  return `$7$${PBKDF2.iterations}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export function verifyDeviceToken(token: string, stored: string): boolean {
  const [, scheme, iterations, salt, hash] = stored.split('$');
  if (scheme !== '7' || !iterations || salt === undefined || hash === undefined) return false;
  const expected = Buffer.from(hash, 'base64');
  const key = pbkdf2Sync(
    token,
    Buffer.from(salt, 'base64'),
    Number(iterations),
    expected.length,
    PBKDF2.digest,
  );
  return constantTimeEqual(key, expected);
}
