import { type Kysely, sql } from 'kysely';
import { csvBatch, jsonBatch } from '../../model/csv.js';
import { PERSISTENT_EVENTS_MS, STREAM_EVENTS_MS } from '../../model/monitor.js';
import type { Notifier, Store } from '../store.js';
import * as accounts from './accounts.js';
import * as cluster from './cluster.js';
import * as devices from './devices.js';
import type { CsvReader, JsonReader, Reader, SqlDialect } from './dialect.js';
import * as dispatch from './dispatch.js';
import * as events from './events.js';
import * as groups from './groups.js';
import * as jobs from './jobs.js';
import * as monitors from './monitors.js';
import { CSV_BATCH } from './pages.js';
import { previewTargets } from './preview.js';
import * as rollout from './rollout.js';
import type { Database } from './schema.js';
import { storeTotals } from './totals.js';

export interface SqlStoreOptions {
  db: Kysely<Database>;
  dialect: SqlDialect;
  /**
   * Pages and the batches of streamed exports: connections that neither wait for the writer nor hold
   * it (or the event loop) up — SQLite's read pool in worker threads, PostgreSQL's own pool.
   */
  readDb: Kysely<Database>;
  /**
   * Where the small reads every request makes (credentials, one job or device by id) run: never
   * waiting for a transaction on `db` (SQLite: a read-only connection on the event loop's own
   * thread, since a creation or cancel of 100,000 targets keeps the writer's one connection for
   * up to 2 s while the event loop runs between its statements). By default `db`.
   */
  lookupDb?: Kysely<Database>;
  /**
   * How CSV exports read and encode their batches, on `readDb`'s connections; by default from the
   * row objects of `readDb`.
   */
  csvReader?: CsvReader;
  /** How JSON pages read and encode their rows, on `readDb`'s connections; by default from its row objects. */
  jsonReader?: JsonReader;
  /** Wake-ups across the nodes on this store. */
  notifier: Notifier;
  /**
   * Resolves once the engine has taken in the writes so far well enough for more (SQLite: its WAL
   * checkpointed): a change by query waits for it between slices. By default at once.
   */
  caughtUp?: () => Promise<void>;
  /** Closes `db` and `readDb`. */
  close(): Promise<void>;
}

/** The one Store on any engine: the shared SQL of this folder over `db`, differences in `dialect`. */
export function createSqlStore(options: SqlStoreOptions): Store {
  const { db, readDb, dialect, notifier, close, caughtUp = async () => {}, lookupDb = db } = options;
  const reader: Reader = async (query) => (await readDb.executeQuery(query)).rows;
  const arrays = async (query: Parameters<Reader>[0]) =>
    (await reader(query)).map((row) => Object.values(row as object));
  const csvReader: CsvReader = options.csvReader ?? {
    rows: CSV_BATCH,
    ranges: false,
    read: async (query, plan) => csvBatch(await arrays(query), plan),
  };
  const jsonReader: JsonReader =
    options.jsonReader ?? (async (query, plan) => jsonBatch(await arrays(query), plan));
  const store: Store = {
    dialect: dialect.id,
    close,
    secret: (name) => accounts.secret(db, name),

    ensureAccount: (name, now) => accounts.ensureAccount(db, name, now),
    createUser: (input) => accounts.createUser(db, input),
    findUser: (username) => accounts.findUser(lookupDb, username),
    listUsers: (accountName) => accounts.listUsers(db, accountName),
    removeUser: (username) => accounts.removeUser(db, username),
    countUsers: () => accounts.countUsers(db),
    totals: () => storeTotals(db),
    createApiKey: (input) => accounts.createApiKey(db, input),
    findApiKey: (id) => accounts.findApiKey(lookupDb, id),
    listApiKeys: (username) => accounts.listApiKeys(db, username),
    revokeApiKey: (id) => accounts.revokeApiKey(db, id),

    createDevices: (accountId, newDevices) => devices.createDevices(db, dialect, accountId, newDevices),
    getDevice: (accountId, id) => devices.getDevice(lookupDb, accountId, id),
    updateDevice: (accountId, id, patch) => devices.updateDevice(db, dialect, accountId, id, patch),
    deleteDevice: (accountId, id, now) => devices.deleteDevice(db, dialect, accountId, id, now),
    setDeviceToken: (accountId, id, tokenHash) => devices.setDeviceToken(db, accountId, id, tokenHash),
    listDevices: (request) => devices.listDevices(readDb, dialect, request),
    existingDeviceIds: (accountId, ids) => devices.existingDeviceIds(db, dialect, accountId, ids),
    listGroups: (request) => groups.listGroups(readDb, dialect, request),
    exportDevices: (request) => devices.exportDevices(db, dialect, csvReader, request),
    exportGroups: (request) => groups.exportGroups(db, dialect, csvReader, request),

    createJob: (job) => jobs.createJob(db, dialect, job),
    async previewTargets(accountId, selection, now, limit) {
      await jobs.checkDevicesKnown(db, dialect, accountId, selection.devices);
      return previewTargets(db, accountId, jobs.selectionWhere(dialect, selection, now), limit);
    },
    failDisconnectedTargets: (accountId, jobId, message, now) =>
      jobs.failDisconnectedTargets(db, dialect, accountId, jobId, message, now),
    getJob: (accountId, id) => jobs.getJob(lookupDb, accountId, id),
    listJobs: (request) => jobs.listJobs(readDb, dialect, request),
    listJobsJson: (request) => jobs.listJobsJson(readDb, dialect, jsonReader, request),
    listTargets: (jobId, request) => jobs.listTargets(readDb, dialect, jobId, request),
    streamTargets: (jobId, request) => jobs.streamTargets(db, dialect, reader, jobId, request),
    // readDb: a device condition's devices are looked up there too, off the writer.
    exportJobs: (request) => jobs.exportJobs(readDb, dialect, csvReader, request),
    exportTargets: (jobId, request) => jobs.exportTargets(db, dialect, csvReader, jobId, request),
    cancelJobs: (accountId, ids, force, now) => jobs.cancelJobs(db, dialect, accountId, ids, force, now),
    cancelJobsByQuery: (accountId, query, force, now) =>
      jobs.cancelJobsByQuery(db, dialect, accountId, query, force, now, caughtUp),
    deleteJobs: (accountId, ids) => jobs.deleteJobs(db, dialect, accountId, ids),
    deleteJobsByQuery: (accountId, query) => jobs.deleteJobsByQuery(db, dialect, accountId, query, caughtUp),

    listEvents: (request) => events.listEvents(readDb, dialect, request),
    lastEventId: () => events.lastEventId(db),
    findEvent: (accountId, uuid) => events.findEvent(db, accountId, uuid),
    pruneEvents: (now) => events.pruneEvents(db, now, PERSISTENT_EVENTS_MS, STREAM_EVENTS_MS),
    createMonitor: (...args) => monitors.createMonitor(db, ...args),
    getMonitor: (...args) => monitors.getMonitor(db, ...args),
    listMonitors: (request) => monitors.listMonitors(readDb, dialect, request),
    updateMonitor: (...args) => monitors.updateMonitor(db, ...args),
    deleteMonitor: (...args) => monitors.deleteMonitor(db, ...args),
    leaseMonitors: (...args) => monitors.leaseMonitors(db, ...args),
    saveDelivery: (...args) => monitors.saveDelivery(db, ...args),

    notify: (wakeUp) => notifier.notify(wakeUp),
    listen: (listener) => notifier.listen(listener),
    async ping() {
      await sql`select 1`.execute(db);
    },
    heartbeat: (...args) => cluster.heartbeat(db, ...args),
    liveNodes: (...args) => cluster.liveNodes(db, ...args),
    leave: (...args) => cluster.leave(db, ...args),
    startNewJobs: (...args) => cluster.startNewJobs(db, dialect, ...args),
    takeOverJobs: (...args) => cluster.takeOverJobs(db, dialect, ...args),
    buryDeadNodes: (...args) => cluster.buryDeadNodes(db, ...args),
    oldestHeartbeat: (...args) => cluster.oldestHeartbeat(db, ...args),
    releaseJob: (...args) => cluster.releaseJob(db, ...args),
    deviceTopicIds: (...args) => dispatch.deviceTopicIds(db, dialect, ...args),
    findDeviceCredentials: (...args) => dispatch.findDeviceCredentials(lookupDb, ...args),
    listDeviceCredentials: (...args) => dispatch.listDeviceCredentials(db, ...args),
    disconnectAll: (...args) => dispatch.disconnectAll(db, dialect, ...args),
    setConnections: (updates) => dispatch.setConnections(db, dialect, updates),
    devicesWithRequests: (deviceIds) => dispatch.devicesWithRequests(db, dialect, deviceIds),
    updateDeviceStates: (...args) => dispatch.updateDeviceStates(db, dialect, ...args),
    takeRequests: (...args) => dispatch.takeRequests(db, dialect, ...args),
    takeJobRequests: (...args) => dispatch.takeJobRequests(db, dialect, ...args),
    pendingCancels: (...args) => dispatch.pendingCancels(db, ...args),
    applyStatuses: (...args) => dispatch.applyStatuses(db, dialect, ...args),
    expireTargets: (...args) => dispatch.expireTargets(db, dialect, ...args),
    nextDeadline: () => dispatch.nextDeadline(db),

    rolloutJobs: (limit) => rollout.rolloutJobs(db, limit),
    moveRolloutState: (...args) => rollout.moveRolloutState(db, dialect, ...args),
    takeRolloutRequests: (...args) => rollout.takeRolloutRequests(db, dialect, ...args),
    endRollout: (...args) => rollout.endRollout(db, dialect, ...args),
    closeRollout: (jobId) => rollout.closeRollout(db, jobId),
    pauseJob: (accountId, id) => rollout.setPaused(db, dialect, accountId, id, true),
    resumeJob: (accountId, id) => rollout.setPaused(db, dialect, accountId, id, false),
    retryTargets: (...args) => rollout.retryTargets(db, dialect, ...args),
    cancelTargets: (...args) => rollout.cancelTargets(db, dialect, ...args),
  };
  return mapErrors(store, dialect);
}

const ATTEMPTS = 5;

/**
 * Every method that answers a promise is one transaction: one the engine aborted to break a
 * deadlock between writers runs again (it changed nothing), and any other error rejects as the
 * dialect maps it.
 */
function mapErrors(store: Store, dialect: SqlDialect): Store {
  const mapped: Record<string, unknown> = { ...store };
  for (const [name, method] of Object.entries(store)) {
    if (
      typeof method !== 'function' ||
      name.startsWith('stream') ||
      name.startsWith('export') ||
      name === 'close' ||
      name === 'listen'
    ) {
      continue;
    }
    const run = method as (...args: unknown[]) => Promise<unknown>;
    mapped[name] = async (...args: unknown[]) => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await run(...args);
        } catch (error) {
          if (attempt < ATTEMPTS && dialect.isRetryable(error)) continue;
          throw dialect.mapError(error);
        }
      }
    };
  }
  return mapped as unknown as Store;
}
