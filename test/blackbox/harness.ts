// Black-box harness: runs the built CLI (bin/fleetjobs -> dist/) as a user would, and talks to the
// server over HTTP only. It builds nothing: `npm run build` (or `npm ci`, whose `prepare` builds) must
// have run first.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { type CliResult, freePort, ROOT, runNode } from '../process.js';

const BIN = join(ROOT, 'bin', 'fleetjobs');

function assertBuilt(): void {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) {
    throw new Error('dist/cli/main.js is missing: run `npm run build` before the black-box suite');
  }
}

/** Runs the built `bin/fleetjobs`. */
export function runCli(args: string[], input?: string, env: Record<string, string> = {}): Promise<CliResult> {
  assertBuilt();
  return runNode([BIN, ...args], input, { NODE_ENV: 'production', ...env });
}

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: a JSON body is whatever the server sent
  body: any;
}

/** An error answer: the status, and the error envelope with a message. */
export function expectError(r: Reply, status: number): void {
  expect(r.status, r.text).toBe(status);
  expect(r.body).toEqual({ error_status: status, error_message: expect.any(String) });
}

export interface Auth {
  user?: string;
  password?: string;
  keyId?: string;
  keySecret?: string;
}

export interface RequestOptions {
  auth?: Auth | null;
  body?: unknown;
  rawBody?: string | Buffer;
  headers?: Record<string, string>;
}

export class Server {
  readonly base: string;
  private exited: Promise<number | null>;
  private output = '';
  defaultAuth: Auth | null = null;

  constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    readonly mqttPort: number,
    readonly dir: string,
    readonly db: string,
  ) {
    this.base = `http://127.0.0.1:${port}`;
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      this.output += d;
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      this.output += d;
    });
    this.exited = new Promise((r) => child.on('exit', (code) => r(code)));
  }

  get log(): string {
    return this.output;
  }

  /** Every byte the store wrote to its folder (db, journal, wal). */
  storeBytes(): string {
    return readdirSync(this.dir)
      .map((f) => readFileSync(join(this.dir, f)).toString('latin1'))
      .join('');
  }

  cli(args: string[], input?: string): Promise<CliResult> {
    return runCli([...args, '--db', this.db], input);
  }

  /** `fleetjobs user add` with the password as an option; `options` adds more, such as `--role`. */
  userAdd(account: string, username: string, password: string, ...options: string[]): Promise<CliResult> {
    return this.cli([
      'user',
      'add',
      '--account',
      account,
      '--username',
      username,
      '--password',
      password,
      ...options,
    ]);
  }

  /** Creates a user (and its account) with a password; returns the Basic credentials. */
  async user(account: string, username: string, role = 'user'): Promise<Auth> {
    const password = `pw-${username}-secret`;
    const r = await this.userAdd(account, username, password, '--role', role);
    if (r.code !== 0) throw new Error(`user add ${username} failed: ${r.stderr}${r.stdout}`);
    return { user: username, password };
  }

  async request(method: string, path: string, opts: RequestOptions = {}): Promise<Reply> {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    const auth = opts.auth === undefined ? this.defaultAuth : opts.auth;
    if (auth?.user !== undefined) {
      headers.authorization = `Basic ${Buffer.from(`${auth.user}:${auth.password ?? ''}`).toString('base64')}`;
    }
    if (auth?.keyId !== undefined) headers['x-api-key-id'] = auth.keyId;
    if (auth?.keySecret !== undefined) headers['x-api-key-secret'] = auth.keySecret;
    let body: string | Buffer | undefined;
    if (opts.rawBody !== undefined) body = opts.rawBody;
    else if (opts.body !== undefined) body = JSON.stringify(opts.body);
    if (body !== undefined && headers['content-type'] === undefined)
      headers['content-type'] = 'application/json';
    const res = await fetch(this.base + path, { method, headers, body });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, headers: res.headers, text, body: parsed };
  }

  get(path: string, opts?: RequestOptions): Promise<Reply> {
    return this.request('GET', path, opts);
  }
  post(path: string, body: unknown, opts: RequestOptions = {}): Promise<Reply> {
    return this.request('POST', path, { ...opts, body });
  }
  put(path: string, body?: unknown, opts: RequestOptions = {}): Promise<Reply> {
    return this.request('PUT', path, body === undefined ? opts : { ...opts, body });
  }
  del(path: string, opts?: RequestOptions): Promise<Reply> {
    return this.request('DELETE', path, opts);
  }

  /** SIGTERM (or the given signal), then the exit code; `keepFiles` keeps the temp dir and db (for a restart). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', keepFiles = false): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 15_000).unref());
    const code = await Promise.race([this.exited, timeout]);
    if (code === 'timeout') {
      this.child.kill('SIGKILL');
      throw new Error(`server did not exit within 15 s of SIGTERM\n${this.output}`);
    }
    if (!keepFiles) rmSync(this.dir, { recursive: true, force: true });
    return code;
  }
}

/**
 * Starts `fleetjobs serve` on a fresh temp db with free ports, given as flags or (viaEnv) as the
 * FLEETJOBS_* environment variables; `db` may name a file in a folder that does not exist yet.
 */
export async function startServer(
  opts: {
    viaEnv?: boolean;
    dbInSubfolder?: boolean;
    /** Restart on the store (and ports) of a server stopped with `stop(signal, true)`. */
    reuse?: { dir: string; db: string; port: number; mqttPort: number };
  } = {},
): Promise<Server> {
  assertBuilt();
  const dir = opts.reuse?.dir ?? mkdtempSync(join(tmpdir(), 'fleetjobs-bb-'));
  const db = opts.reuse?.db ?? (opts.dbInSubfolder ? join(dir, 'new', 'folder', 'x.db') : join(dir, 'x.db'));
  const port = opts.reuse?.port ?? (await freePort());
  const mqttPort = opts.reuse?.mqttPort ?? (await freePort());
  const env: Record<string, string | undefined> = { ...process.env, NODE_ENV: 'production' };
  const args = [BIN, 'serve'];
  if (opts.viaEnv) {
    env.FLEETJOBS_PORT = String(port);
    env.FLEETJOBS_DB = db;
    env.FLEETJOBS_MQTT_PORT = String(mqttPort);
  } else {
    args.push('--port', String(port), '--db', db, '--mqtt-port', String(mqttPort));
  }
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const server = new Server(child, port, mqttPort, dir, db);
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}\n${server.log}`);
    try {
      const res = await fetch(`${server.base}/healthz`);
      if (res.status === 200) return server;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`server did not answer /healthz within 20 s\n${server.log}`);
}

let deviceCounter = 0;
/** A fresh device id: four groups of 8 hex digits, unique within this test process. */
export function deviceId(prefix = 'AB'): string {
  if (!/^[0-9A-F]{1,4}$/.test(prefix)) throw new Error(`deviceId prefix must be 1-4 hex digits: ${prefix}`);
  deviceCounter += 1;
  const p = `${prefix}${process.pid.toString(16)}`.slice(0, 8).padEnd(8, '0').toUpperCase();
  return `00000000-00000000-${p}-${deviceCounter.toString(16).padStart(8, '0').toUpperCase()}`;
}

export const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export const JOB_FIELDS = [
  'id',
  'customer_id',
  'username',
  'job_type',
  'job_status',
  'description',
  'job_submit_time',
  'job_completion_time',
  'target_count',
  'progress_success',
  'progress_failures',
  'progress_canceled',
  'progress_pending',
] as const;

/** A job in lists and XML (§9 adds the rollout's state and abort reason; CSV keeps JOB_FIELDS). */
export const LISTED_JOB_FIELDS = [...JOB_FIELDS, 'rollout_state', 'abort_reason'] as const;

export function q(query: string): string {
  return encodeURIComponent(query);
}

/** Follows next_uri from `path` to the end; returns every page. */
// biome-ignore lint/suspicious/noExplicitAny: JSON pages
export async function allPages(server: Server, path: string, opts?: RequestOptions): Promise<any[]> {
  const pages = [];
  let next: string | undefined = path;
  for (let i = 0; next !== undefined && i < 10_000; i += 1) {
    const r = await server.get(next, opts);
    if (r.status !== 200) throw new Error(`GET ${next}: ${r.status} ${r.text}`);
    pages.push(r.body);
    next = r.body.next_uri;
  }
  return pages;
}

/** The CRLF-separated lines of a CSV text without embedded line breaks (RFC 4180: the last CRLF is optional). */
export function csvLines(text: string): string[] {
  expect(text.replace(/\r\n/g, '')).not.toContain('\n');
  return text.replace(/\r\n$/, '').split('\r\n');
}
