/** The console's calls to the v1 API, with the credentials the user signed in with. */

import type { JobStatus, TargetStatus } from '../../src/model/job.js';

export type Credentials =
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'key'; id: string; secret: string };

const STORAGE_KEY = 'fleetjobs.credentials';

export function loadCredentials(): Credentials | null {
  const stored = sessionStorage.getItem(STORAGE_KEY);
  return stored === null ? null : (JSON.parse(stored) as Credentials);
}

export function saveCredentials(credentials: Credentials): void {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(credentials));
}

export function clearCredentials(): void {
  sessionStorage.removeItem(STORAGE_KEY);
}

/** btoa takes Latin-1 only: Basic credentials are UTF-8 bytes, base64-encoded. */
function base64Utf8(text: string): string {
  return btoa(Array.from(new TextEncoder().encode(text), (byte) => String.fromCharCode(byte)).join(''));
}

function authHeaders(credentials: Credentials): Record<string, string> {
  return credentials.kind === 'basic'
    ? { authorization: `Basic ${base64Utf8(`${credentials.username}:${credentials.password}`)}` }
    : { 'x-api-key-id': credentials.id, 'x-api-key-secret': credentials.secret };
}

/** An error answer of the API: its status and message as the service wrote them. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }

  /** The 1-based position of a query error (`Invalid query at position P: …`), if it names one. */
  get queryPosition(): number | null {
    const match = /at position (\d+)/.exec(this.message);
    return match?.[1] === undefined ? null : Number(match[1]);
  }
}

/** Fired when the API refuses the stored credentials: the app goes back to its login form. */
export const UNAUTHORIZED_EVENT = 'fleetjobs-unauthorized';

/**
 * The request of the page a navigation leads to, started at the navigation: the page is built
 * while the service answers, and takes that answer with its first `call('GET', path)`. Kept until
 * then, or until the next navigation: an answer is never shown on a later visit.
 */
let started: { path: string; answer: Promise<unknown> } | null = null;

/** A navigation: starts `GET path`, the first request of the page it leads to (none if undefined). */
export function startNavigationGet(path: string | undefined): void {
  started = null;
  if (path === undefined || loadCredentials() === null) return;
  const answer = call('GET', path);
  // The page takes the answer or its error; until then none is left unhandled.
  answer.catch(() => undefined);
  started = { path, answer };
}

export function call<T>(
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  path: string,
  body?: unknown,
  credentials: Credentials | null = loadCredentials(),
): Promise<T> {
  if (method !== 'GET' || started?.path !== path) return send(method, path, body, credentials);
  const { answer } = started;
  started = null;
  return answer as Promise<T>;
}

async function send<T>(
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  path: string,
  body: unknown,
  credentials: Credentials | null,
): Promise<T> {
  const headers: Record<string, string> = {
    accept: 'application/json',
    // Tells the service not to challenge: a 401 is handled here, not by the browser's dialog.
    'x-requested-with': 'fleetjobs-console',
    ...(credentials === null ? {} : authHeaders(credentials)),
  };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  const parsed: unknown = text === '' ? null : JSON.parse(text);
  if (!response.ok) {
    const message =
      typeof parsed === 'object' && parsed !== null && 'error_message' in parsed
        ? String(parsed.error_message)
        : `${response.status} ${response.statusText}`;
    if (response.status === 401) window.dispatchEvent(new Event(UNAUTHORIZED_EVENT));
    throw new ApiError(response.status, message);
  }
  return parsed as T;
}

/**
 * Reads the live stream at `path` (`/ws/v1/events?…`, CONTRACT §10) with the stored credentials:
 * `onOpen` once it answered, `onEvent` for each event. EventSource cannot send the credentials'
 * headers, so the stream is read with fetch. Resolves when it ends; rejects when it fails.
 */
export async function streamEvents(
  path: string,
  handlers: { onOpen: () => void; onEvent: () => void },
  signal: AbortSignal,
  credentials: Credentials | null = loadCredentials(),
): Promise<void> {
  const response = await fetch(path, {
    headers: {
      accept: 'text/event-stream',
      'x-requested-with': 'fleetjobs-console',
      ...(credentials === null ? {} : authHeaders(credentials)),
    },
    signal,
  });
  if (!response.ok || response.body === null) throw new ApiError(response.status, response.statusText);
  handlers.onOpen();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += value;
    const blocks = buffer.split('\n\n');
    buffer = blocks.pop() ?? '';
    // Comments (keep-alives) are blocks without a data line.
    if (blocks.some((block) => block.split('\n').some((line) => line.startsWith('data:'))))
      handlers.onEvent();
  }
}

/** A path with its query string; parameters without a value are left out. */
export function withParams(path: string, params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== '') search.set(name, String(value));
  }
  const text = search.toString();
  return text === '' ? path : `${path}?${text}`;
}

// ---- the resources as the API writes them (times as ISO 8601 text) ----

export interface Page<T> {
  count: number;
  size: number;
  cursor?: string;
  next_uri?: string;
  list: T[];
}

export interface Job {
  id: number;
  username: string;
  job_type: string;
  job_status: JobStatus;
  description: string | null;
  job_submit_time: string;
  job_completion_time: string | null;
  target_count: number;
  progress_success: number;
  progress_failures: number;
  progress_canceled: number;
  progress_pending: number;
  /** Present once the service has rollouts (CONTRACT §9). */
  rollout_state?: string;
  abort_reason?: string | null;
}

export interface JobDetail extends Job {
  payload: unknown;
  timeout: number;
  offline_timeout: number;
  targets: Record<string, unknown>;
}

export interface Target {
  job_id: number;
  device_id: string;
  status: TargetStatus;
  progress: number;
  message: string | null;
  queued_time: string | null;
  start_time: string | null;
  end_time: string | null;
  attempt?: number;
}

export interface Device {
  id: string;
  name: string | null;
  group: string;
  tags: string[];
  connection_status: string;
  last_connect: string | null;
  last_disconnect: string | null;
  type: string | null;
  firmware_version: string | null;
}

export interface TargetPreview {
  target_count: number;
  list: string[];
  offline: number;
}
