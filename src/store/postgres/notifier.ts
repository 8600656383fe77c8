import { type Kysely, sql } from 'kysely';
import pg from 'pg';
import type { Database } from '../sql/schema.js';
import type { Notifier, WakeUp } from '../store.js';

const CHANNEL = 'fleetjobs';
const WAKE_UPS: readonly WakeUp[] = ['jobs'];
const RECONNECT_MS = 1_000;

/**
 * Wake-ups across every node on the database: NOTIFY through the pool, LISTEN on a connection of
 * its own per listener. A listener whose connection broke misses wake-ups until it is back (it
 * retries every second); the dispatcher's periodic sweep finds what they were about.
 */
export function postgresNotifier(url: string, db: Kysely<Database>): Notifier {
  return {
    async notify(wakeUp) {
      await sql`select pg_notify(${CHANNEL}, ${wakeUp})`.execute(db);
    },
    async listen(listener) {
      let client: pg.Client | null = null;
      let stopped = false;
      let retry: NodeJS.Timeout | undefined;
      const reconnect = () => {
        if (stopped) return;
        retry = setTimeout(() => void connect().catch(reconnect), RECONNECT_MS);
      };
      const connect = async () => {
        const connection = new pg.Client({ connectionString: url });
        connection.on('notification', (message) => {
          const wakeUp = WAKE_UPS.find((known) => known === message.payload);
          if (wakeUp) listener(wakeUp);
        });
        let lost = false;
        const onLost = () => {
          if (lost) return;
          lost = true;
          if (client === connection) client = null;
          void connection.end().catch(() => undefined);
          reconnect();
        };
        connection.on('error', onLost);
        connection.on('end', onLost);
        await connection.connect();
        await connection.query(`listen ${CHANNEL}`);
        if (stopped) await connection.end();
        else client = connection;
      };
      await connect();
      return async () => {
        stopped = true;
        clearTimeout(retry);
        await client?.end().catch(() => undefined);
      };
    },
  };
}
