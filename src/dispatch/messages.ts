import { DEVICE_NUMBER_FIELDS, DEVICE_REPORTED_FIELDS, HEALTH_STATUSES } from '../model/device.js';
import { REPORTED_STATUSES, type ReportedStatus } from '../model/job.js';
import type { CancelNotice, DeviceState, OutgoingRequest, StatusReport } from '../store/store.js';

/** The payloads of CONTRACT §7. Parsers return the value or the reason it was refused. */

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

const MAX_PAYLOAD_BYTES = 256 * 1024;

function parseObject(payload: Buffer): Parsed<Record<string, unknown>> {
  if (payload.length > MAX_PAYLOAD_BYTES)
    return { ok: false, reason: `payload over ${MAX_PAYLOAD_BYTES} bytes` };
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    return { ok: false, reason: 'payload is not JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'payload is not a JSON object' };
  }
  return { ok: true, value: value as Record<string, unknown> };
}

export function parsePresence(payload: Buffer): Parsed<boolean> {
  const text = payload.toString('utf8').trim();
  if (text === 'online' || text === 'offline') return { ok: true, value: text === 'online' };
  return { ok: false, reason: 'presence is neither online nor offline' };
}

/** `{status, progress?, message?, response?}`: a wrong type anywhere refuses the whole report. */
export function parseStatusReport(payload: Buffer): Parsed<StatusReport> {
  const parsed = parseObject(payload);
  if (!parsed.ok) return parsed;
  const { status, progress, message, response } = parsed.value;
  if (typeof status !== 'string' || !(REPORTED_STATUSES as readonly string[]).includes(status)) {
    return { ok: false, reason: `status must be one of ${REPORTED_STATUSES.join(', ')}` };
  }
  const report: StatusReport = { status: status as ReportedStatus };
  if (progress !== undefined && progress !== null) {
    if (typeof progress !== 'number' || !Number.isFinite(progress) || progress < 0 || progress > 100) {
      return { ok: false, reason: 'progress must be a number from 0 to 100' };
    }
    report.progress = Math.round(progress);
  }
  if (message !== undefined && message !== null) {
    if (typeof message !== 'string') return { ok: false, reason: 'message must be text' };
    report.message = message;
  }
  if (response !== undefined) report.response = response;
  return { ok: true, value: report };
}

const NUMBER_FIELDS: ReadonlySet<string> = new Set(DEVICE_NUMBER_FIELDS);

/** Whether `value` suits the reported device field `field`; null clears a field. */
function validStateValue(field: (typeof DEVICE_REPORTED_FIELDS)[number], value: unknown): boolean {
  if (value === null) return field !== 'health_status';
  if (field === 'health_status')
    return typeof value === 'string' && (HEALTH_STATUSES as readonly string[]).includes(value);
  if (field === 'vendor_id') return Number.isSafeInteger(value) && (value as number) >= 0;
  if (NUMBER_FIELDS.has(field)) {
    if (typeof value !== 'number' || !Number.isFinite(value)) return false;
    return !field.startsWith('signal_percent') || (value >= 0 && value <= 100);
  }
  return typeof value === 'string';
}

/**
 * The fields of CONTRACT §7 that the device may report about itself; other fields are ignored,
 * and so is a reported field of the wrong type (listed in `ignored`).
 */
export function parseDeviceState(payload: Buffer): Parsed<{ state: DeviceState; ignored: string[] }> {
  const parsed = parseObject(payload);
  if (!parsed.ok) return parsed;
  const state: Record<string, unknown> = {};
  const ignored: string[] = [];
  for (const [field, value] of Object.entries(parsed.value)) {
    const reported = DEVICE_REPORTED_FIELDS.find((name) => name === field);
    if (reported !== undefined && validStateValue(reported, value)) state[reported] = value;
    else ignored.push(field);
  }
  return { ok: true, value: { state: state as DeviceState, ignored } };
}

export const requestPayload = (request: OutgoingRequest): string =>
  JSON.stringify({
    job_id: request.job_id,
    job_type: request.job_type,
    payload: request.payload,
    timeout: request.timeout,
    attempt: request.attempt,
  });

export const cancelPayload = (notice: CancelNotice): string =>
  JSON.stringify({ job_id: notice.job_id, force: notice.force });
