import type { EventTopic } from './event.js';
import type { Millis } from './job.js';

export const MONITOR_TYPES = ['http'] as const;
export const MONITOR_STATUSES = ['active', 'inactive', 'disabled'] as const;
export type MonitorStatus = (typeof MONITOR_STATUSES)[number];
export const MONITOR_FORMATS = ['json', 'xml'] as const;
export const MONITOR_METHODS = ['POST', 'PUT'] as const;
export const MONITOR_COMPRESSIONS = ['none', 'gzip'] as const;

/** What a client sets on a monitor (§10). */
export interface MonitorSettings {
  type: (typeof MONITOR_TYPES)[number];
  topics: EventTopic[];
  url: string;
  method: (typeof MONITOR_METHODS)[number];
  format: (typeof MONITOR_FORMATS)[number];
  auth_token: string | null;
  /** `Name: value` lines. */
  headers: string[];
  batch_size: number;
  /** Seconds. */
  batch_duration: number;
  compression: (typeof MONITOR_COMPRESSIONS)[number];
  persistent: boolean;
  secret: string | null;
  description: string | null;
}

/** A monitor as the store keeps it: settings, status and what it delivered last. */
export interface Monitor extends MonitorSettings {
  id: number;
  customer_id: number;
  status: MonitorStatus;
  last_sent: Millis | null;
  last_sent_uuid: string | null;
  created_at: Millis;
}

/** A monitor with its delivery state, as the node holding its lease sees it. */
export interface LeasedMonitor extends Monitor {
  /** The last event id sent (or dropped): delivery continues after it. */
  cursor_id: number;
  /** Failed tries of the batch now waiting. */
  attempts: number;
  next_attempt_at: Millis | null;
  /** When the first failure since the last success happened. */
  failing_since: Millis | null;
}

/** Events kept for a persistent monitor (and at most this long for anyone). */
export const PERSISTENT_EVENTS_MS = 7 * 86_400_000;
/** Events kept for the live stream's Last-Event-ID resume. */
export const STREAM_EVENTS_MS = 3_600_000;
