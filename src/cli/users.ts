import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { type Command, Option } from 'commander';
import { ROLES, type Role } from '../model/account.js';
import { hashPassword } from '../security/hashing.js';
import {
  action,
  printJson,
  type StoreOptions,
  storeOptions,
  UsageError,
  withIsoCreatedAt,
  withStore,
} from './options.js';

/** Names travel in HTTP Basic, where a colon separates username from password. */
function checkName(kind: string, name: string): string {
  if (name === '' || name.trim() !== name || name.length > 128 || /[:\p{Cc}]/u.test(name)) {
    throw new UsageError(
      `invalid ${kind} '${name}': 1-128 characters, no colon, no control characters, no leading or trailing spaces`,
    );
  }
  return name;
}

/** One line of standard input; on a terminal it is asked for without echo. */
function readPassword(): Promise<string> {
  const terminal = process.stdin.isTTY === true;
  let muted = false;
  const output = new Writable({
    write(chunk, _encoding, done) {
      if (!muted) process.stderr.write(chunk);
      done();
    },
  });
  const lines = createInterface({ input: process.stdin, output, terminal });
  return new Promise((resolve, reject) => {
    let answered = false;
    lines.once('line', (line) => {
      answered = true;
      lines.close();
      if (terminal) process.stderr.write('\n');
      resolve(line.replace(/\r$/, ''));
    });
    lines.once('close', () => {
      if (!answered) reject(new UsageError('no password: give --password or one line on standard input'));
    });
    if (terminal) {
      process.stderr.write('Password: ');
      muted = true;
    }
  });
}

export function registerUserCommands(program: Command): void {
  const user = program.command('user').description('manage users');

  storeOptions(
    user
      .command('add')
      .description('create a user (and its account if new); reads the password from stdin without --password')
      .requiredOption('--account <name>', 'the account the user belongs to (created if missing)')
      .requiredOption('--username <name>', 'the username, unique across the service')
      .option('--password <password>', 'the password (default: one line from standard input)')
      .addOption(new Option('--role <role>', 'the role').choices(ROLES).default('user')),
  ).action(
    action(
      async (
        options: StoreOptions & { account: string; username: string; password?: string; role: Role },
      ) => {
        const account = checkName('account name', options.account);
        const username = checkName('username', options.username);
        const password = options.password ?? (await readPassword());
        if (password === '') throw new UsageError('the password must not be empty');
        const passwordHash = await hashPassword(password);
        await withStore(options, async (store) => {
          if ((await store.findUser(username)) !== undefined)
            throw new UsageError(`username '${username}' is taken`);
          const now = Date.now();
          const { id: accountId } = await store.ensureAccount(account, now);
          printJson(
            withIsoCreatedAt(
              await store.createUser({ accountId, username, passwordHash, role: options.role, now }),
            ),
          );
        });
      },
    ),
  );

  storeOptions(
    user
      .command('list')
      .description('list users')
      .option('--account <name>', 'only the users of this account'),
  ).action(
    action(async (options: StoreOptions & { account?: string }) => {
      await withStore(options, async (store) =>
        printJson((await store.listUsers(options.account)).map(withIsoCreatedAt)),
      );
    }),
  );

  storeOptions(
    user
      .command('remove')
      .description('remove a user and its API keys')
      .requiredOption('--username <name>', 'the user'),
  ).action(
    action(async (options: StoreOptions & { username: string }) => {
      await withStore(options, async (store) => {
        if (!(await store.removeUser(options.username)))
          throw new UsageError(`no user '${options.username}'`);
        process.stdout.write(`removed user ${options.username}\n`);
      });
    }),
  );
}
