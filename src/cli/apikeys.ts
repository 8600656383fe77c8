import type { Command } from 'commander';
import { hashApiSecret, randomId, randomSecret } from '../security/hashing.js';
import type { Store } from '../store/store.js';
import {
  action,
  printJson,
  type StoreOptions,
  storeOptions,
  UsageError,
  withIsoCreatedAt,
  withStore,
} from './options.js';

async function requireUser(store: Store, username: string) {
  const user = await store.findUser(username);
  if (user === undefined) throw new UsageError(`no user '${username}'`);
  return user;
}

export function registerApiKeyCommands(program: Command): void {
  const apikey = program.command('apikey').description('manage API keys');

  storeOptions(
    apikey
      .command('add')
      .description('create an API key for a user; its secret is shown only this once')
      .requiredOption('--username <name>', 'the user the key acts as'),
  ).action(
    action(async (options: StoreOptions & { username: string }) => {
      await withStore(options, async (store) => {
        const user = await requireUser(store, options.username);
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
    action(async (options: StoreOptions & { username: string }) => {
      await withStore(options, async (store) => {
        await requireUser(store, options.username);
        printJson((await store.listApiKeys(options.username)).map(withIsoCreatedAt));
      });
    }),
  );

  storeOptions(
    apikey.command('revoke').description('revoke an API key').argument('<id>', 'the key id'),
  ).action(
    action(async (id: string, options: StoreOptions) => {
      await withStore(options, async (store) => {
        if (!(await store.revokeApiKey(id))) throw new UsageError(`no API key '${id}'`);
        process.stdout.write(`revoked API key ${id}\n`);
      });
    }),
  );
}
