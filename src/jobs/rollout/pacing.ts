import type { Millis } from '../../model/job.js';
import type { RolloutRate } from '../../model/rollout.js';

/** The highest rate of CONTRACT §9: a ramp never grows beyond it either. */
const MAX_RATE_PER_MINUTE = 100_000;

/** The counts a ramp by `notified` or `succeeded` steps on. */
export interface RampCounts {
  notified: number;
  succeeded: number;
}

/**
 * Requests per minute allowed now: `max_per_minute`, or the exponential ramp (base × factor for
 * every `every` targets notified or succeeded) capped by it; null when the job has no rate.
 */
export function ratePerMinute(rate: RolloutRate | null, counts: RampCounts): number | null {
  if (rate === null) return null;
  const ramp = rate.exponential;
  if (ramp === undefined) return rate.max_per_minute ?? null;
  const counted = ramp.after === 'notified' ? counts.notified : counts.succeeded;
  const grown = ramp.base_per_minute * ramp.increment_factor ** Math.floor(counted / ramp.every);
  return Math.min(grown, rate.max_per_minute ?? MAX_RATE_PER_MINUTE);
}

/** How many sends may start now, and where the job's pace stands after `sent` of them. */
export interface SendSlots {
  /** At most this many now (Infinity: no rate). */
  count: number;
  /** The job's next_send_at once `sent` requests went out. */
  nextSendAt(sent: number): Millis | null;
}

/**
 * Pacing: with R per minute, sends are 60/R seconds apart, never in bursts. `nextSendAt` is the
 * job's (stored, shared by every node) earliest next send. A node looks every `tickMillis`: at
 * rates above one per tick it sends the sends of one tick at once (never more), evenly on average.
 */
export function sendSlots(
  perMinute: number | null,
  nextSendAt: Millis | null,
  now: Millis,
  tickMillis: number,
): SendSlots {
  if (perMinute === null) return { count: Number.POSITIVE_INFINITY, nextSendAt: () => nextSendAt };
  if (nextSendAt !== null && nextSendAt > now) return { count: 0, nextSendAt: () => nextSendAt };
  const interval = 60_000 / perMinute;
  const perTick = Math.max(1, Math.floor(tickMillis / interval));
  // No credit for idle time beyond one tick's worth: a job that waited does not burst.
  const base = Math.max(nextSendAt ?? now, now - (perTick - 1) * interval);
  const count = Math.min(perTick, Math.floor((now - base) / interval) + 1);
  return { count, nextSendAt: (sent) => (sent > 0 ? Math.ceil(base + sent * interval) : nextSendAt) };
}

/** Sends allowed now: the pace's slots, within `max_in_flight` given those in progress. */
export function sendAllowance(rate: RolloutRate | null, slots: SendSlots, inFlight: number): number {
  const room = rate?.max_in_flight === undefined ? Number.POSITIVE_INFINITY : rate.max_in_flight - inFlight;
  return Math.max(0, Math.min(slots.count, room));
}
