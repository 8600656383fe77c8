import type BetterSqlite3 from 'better-sqlite3';
import type { Store } from '../store.js';

export type { SqliteStoreOptions } from './database.js';

import * as accounts from './accounts.js';
import { openSqliteDatabase, openSqliteReader, type SqliteStoreOptions } from './database.js';
import * as devices from './devices.js';
import * as dispatch from './dispatch.js';
import * as jobs from './jobs.js';

/**
 * The SQLite store: one kysely connection for everything that writes or must be current, and a
 * separate read-only connection (opened on first use) for streamed exports.
 */
export async function openSqliteStore(path: string, options: SqliteStoreOptions = {}): Promise<Store> {
  const db = await openSqliteDatabase(path, options);
  let readerConnection: BetterSqlite3.Database | undefined;
  const reader = () => {
    readerConnection ??= openSqliteReader(path);
    return readerConnection;
  };

  return {
    dialect: 'sqlite',
    async close() {
      readerConnection?.close();
      await db.destroy();
    },
    secret: (name) => accounts.secret(db, name),

    ensureAccount: (name, now) => accounts.ensureAccount(db, name, now),
    createUser: (input) => accounts.createUser(db, input),
    findUser: (username) => accounts.findUser(db, username),
    listUsers: (accountName) => accounts.listUsers(db, accountName),
    removeUser: (username) => accounts.removeUser(db, username),
    countUsers: () => accounts.countUsers(db),
    createApiKey: (input) => accounts.createApiKey(db, input),
    findApiKey: (id) => accounts.findApiKey(db, id),
    listApiKeys: (username) => accounts.listApiKeys(db, username),
    revokeApiKey: (id) => accounts.revokeApiKey(db, id),

    createDevices: (accountId, newDevices) => devices.createDevices(db, accountId, newDevices),
    getDevice: (accountId, id) => devices.getDevice(db, accountId, id),
    updateDevice: (accountId, id, patch) => devices.updateDevice(db, accountId, id, patch),
    deleteDevice: (accountId, id, now) => devices.deleteDevice(db, accountId, id, now),
    setDeviceToken: (accountId, id, tokenHash) => devices.setDeviceToken(db, accountId, id, tokenHash),
    listDevices: (request) => devices.listDevices(db, request),
    streamDevices: (request) => devices.streamDevices(db, reader(), request),

    createJob: (job) => jobs.createJob(db, job),
    getJob: (accountId, id) => jobs.getJob(db, accountId, id),
    listJobs: (request) => jobs.listJobs(db, request),
    streamJobs: (request) => jobs.streamJobs(db, reader(), request),
    listTargets: (jobId, request) => jobs.listTargets(db, jobId, request),
    streamTargets: (jobId, request) => jobs.streamTargets(db, reader(), jobId, request),
    cancelJobs: (accountId, ids, force, now) => jobs.cancelJobs(db, accountId, ids, force, now),
    cancelJobsByQuery: (accountId, query, force, now) =>
      jobs.cancelJobsByQuery(db, accountId, query, force, now),
    deleteJobs: (accountId, ids) => jobs.deleteJobs(db, accountId, ids),
    deleteJobsByQuery: (accountId, query) => jobs.deleteJobsByQuery(db, accountId, query),

    findDeviceCredentials: (...args) => dispatch.findDeviceCredentials(db, ...args),
    disconnectAll: (...args) => dispatch.disconnectAll(db, ...args),
    setConnection: (...args) => dispatch.setConnection(db, ...args),
    updateDeviceState: (...args) => dispatch.updateDeviceState(db, ...args),
    startNewJobs: () => dispatch.startNewJobs(db),
    takeRequests: (...args) => dispatch.takeRequests(db, ...args),
    takeJobRequests: (...args) => dispatch.takeJobRequests(db, ...args),
    pendingCancels: (...args) => dispatch.pendingCancels(db, ...args),
    applyStatuses: (...args) => dispatch.applyStatuses(db, ...args),
    expireTargets: (...args) => dispatch.expireTargets(db, ...args),
    nextDeadline: (...args) => dispatch.nextDeadline(db, ...args),
  };
}
