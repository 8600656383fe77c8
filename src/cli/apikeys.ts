import type { Command } from 'commander';
import type { ApiKey } from '../model/account.js';
import { hashApiSecret, randomId, randomSecret } from '../security/hashing.js';
import { action, printJson, storeOptions, UsageError, withStore } from './options.js';

const keyJson = (key: ApiKey) => ({ ...key, created_at: new Date(key.created_at).toISOString() });

export function registerApiKeyCommands(program: Command): void {
  const apikey = program.command('apikey').description('manage API keys');

  storeOptions(
    apikey
      .command('add')
      .description('create an API key for a user; its secret is shown only this once')
      .requiredOption('--username <name>', 'the user the key acts as'),
  ).action(
    action(async (options: { username: string; db: string; databaseUrl?: string }) => {
      await withStore(options, async (store) => {
        const user = await store.findUser(options.username);
        if (user === undefined) throw new UsageError(`no user '${options.username}'`);
        const secret = randomSecret();
        const key = await store.createApiKey({
          id: randomId(),
          userId: user.id,
          secretHash: hashApiSecret(secret),
          now: Date.now(),
        });
        printJson({ id: key.id, secret });
      });
    }),
  );

  storeOptions(
    apikey
      .command('list')
      .description("list a user's API keys (never their secrets)")
      .requiredOption('--username <name>', 'the user'),
  ).action(
    action(async (options: { username: string; db: string; databaseUrl?: string }) => {
      await withStore(options, async (store) => {
        if ((await store.findUser(options.username)) === undefined)
          throw new UsageError(`no user '${options.username}'`);
        printJson((await store.listApiKeys(options.username)).map(keyJson));
      });
    }),
  );

  storeOptions(
    apikey.command('revoke').description('revoke an API key').argument('<id>', 'the key id'),
  ).action(
    action(async (id: string, options: { db: string; databaseUrl?: string }) => {
      await withStore(options, async (store) => {
        if (!(await store.revokeApiKey(id))) throw new UsageError(`no API key '${id}'`);
        process.stdout.write(`revoked API key ${id}\n`);
      });
    }),
  );
}
