import type { Millis } from '../../model/job.js';
import type { RetryPolicy, TargetRetries } from '../../model/rollout.js';

/**
 * When a target that just ended `failed` or `timed_out` is tried again, or null once it used the
 * retries of that type (CONTRACT §9: each type has its own, so a timeout after a retried failure is
 * still retried). A timeout covers a target's whole life: one that timed out queued (never sent, or
 * waiting for its next attempt) is retried as well. The next attempt n waits delay × factor^(n-2)
 * seconds (no less than the delay: attempt 1 after a timeout before the first send waits the delay).
 */
export function nextAttemptTime(
  policy: RetryPolicy | null,
  status: 'failed' | 'timed_out',
  target: TargetRetries,
  now: Millis,
): Millis | null {
  if (policy === null) return null;
  const used = status === 'failed' ? target.failed_retries : target.timed_out_retries;
  if (used >= (policy[status] ?? 0)) return null;
  const next = target.attempt + 1;
  const delaySeconds = (policy.delay_seconds ?? 0) * (policy.backoff_factor ?? 1) ** Math.max(0, next - 2);
  return now + Math.round(delaySeconds * 1000);
}
