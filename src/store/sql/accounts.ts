import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Account, ApiKey, Role, User } from '../../model/account.js';
import { conflict } from '../../model/error.js';
import type { Millis } from '../../model/job.js';
import type { StoredApiKey, StoredUser } from '../store.js';
import type { Database } from './schema.js';

type Db = Kysely<Database>;

/** Settings, accounts, users and API keys. */

export async function secret(db: Db, name: string): Promise<Buffer> {
  const key = `secret:${name}`;
  await db
    .insertInto('settings')
    .values({ key, value: randomBytes(32).toString('base64') })
    .onConflict((conflict) => conflict.doNothing())
    .execute();
  const row = await db
    .selectFrom('settings')
    .select('value')
    .where('key', '=', key)
    .executeTakeFirstOrThrow();
  return Buffer.from(row.value, 'base64');
}

export async function ensureAccount(db: Db, name: string, now: Millis): Promise<Account> {
  await db
    .insertInto('accounts')
    .values({ name, created_at: now })
    .onConflict((conflict) => conflict.column('name').doNothing())
    .execute();
  return db.selectFrom('accounts').select(['id', 'name']).where('name', '=', name).executeTakeFirstOrThrow();
}

const userQuery = (db: Db) =>
  db
    .selectFrom('users as u')
    .innerJoin('accounts as a', 'a.id', 'u.account_id')
    .select(['u.id', 'u.username', 'u.role', 'u.account_id', 'a.name as account_name', 'u.created_at']);

type UserRow = {
  id: number;
  username: string;
  role: string;
  account_id: number;
  account_name: string;
  created_at: number;
};

const userFromRow = (row: UserRow): User => ({ ...row, role: row.role as Role });

export async function createUser(
  db: Db,
  input: { accountId: number; username: string; passwordHash: string; role: Role; now: Millis },
): Promise<User> {
  const inserted = await db
    .insertInto('users')
    .values({
      account_id: input.accountId,
      username: input.username,
      password_hash: input.passwordHash,
      role: input.role,
      created_at: input.now,
    })
    .onConflict((conflict) => conflict.column('username').doNothing())
    .returning('id')
    .executeTakeFirst();
  if (!inserted) throw conflict(`Username '${input.username}' is taken`);
  return userFromRow(await userQuery(db).where('u.id', '=', inserted.id).executeTakeFirstOrThrow());
}

export async function findUser(db: Db, username: string): Promise<StoredUser | undefined> {
  const row = await userQuery(db)
    .select('u.password_hash')
    .where('u.username', '=', username)
    .executeTakeFirst();
  return row && { ...userFromRow(row), password_hash: row.password_hash };
}

export async function listUsers(db: Db, accountName?: string): Promise<User[]> {
  let query = userQuery(db).orderBy('u.id');
  if (accountName !== undefined) query = query.where('a.name', '=', accountName);
  return (await query.execute()).map(userFromRow);
}

export async function removeUser(db: Db, username: string): Promise<boolean> {
  const result = await db.deleteFrom('users').where('username', '=', username).executeTakeFirst();
  return result.numDeletedRows > 0n;
}

export async function countUsers(db: Db): Promise<number> {
  const row = await db
    .selectFrom('users')
    .select((eb) => eb.fn.countAll<number>().as('count'))
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

export async function createApiKey(
  db: Db,
  input: { id: string; userId: number; secretHash: string; now: Millis },
): Promise<ApiKey> {
  await db
    .insertInto('api_keys')
    .values({ id: input.id, user_id: input.userId, secret_hash: input.secretHash, created_at: input.now })
    .execute();
  const user = await db
    .selectFrom('users')
    .select('username')
    .where('id', '=', input.userId)
    .executeTakeFirstOrThrow();
  return { id: input.id, username: user.username, created_at: input.now };
}

export async function findApiKey(db: Db, id: string): Promise<StoredApiKey | undefined> {
  const row = await userQuery(db)
    .innerJoin('api_keys as k', 'k.user_id', 'u.id')
    .select(['k.id as key_id', 'k.secret_hash'])
    .where('k.id', '=', id)
    .executeTakeFirst();
  if (!row) return undefined;
  const { key_id, secret_hash, ...user } = row;
  return { id: key_id, secret_hash, user: userFromRow(user) };
}

export async function listApiKeys(db: Db, username: string): Promise<ApiKey[]> {
  return db
    .selectFrom('api_keys as k')
    .innerJoin('users as u', 'u.id', 'k.user_id')
    .select(['k.id', 'u.username', 'k.created_at'])
    .where('u.username', '=', username)
    .orderBy('k.created_at')
    .orderBy('k.id')
    .execute();
}

export async function revokeApiKey(db: Db, id: string): Promise<boolean> {
  const result = await db.deleteFrom('api_keys').where('id', '=', id).executeTakeFirst();
  return result.numDeletedRows > 0n;
}
