import type { Millis } from '../../model/job.js';
import type { RetryPolicy } from '../../model/rollout.js';

/**
 * When a target whose attempt `attempt` just ended `failed` or `timed_out` is tried again, or null
 * when it used its retries of that kind: attempt n waits delay × factor^(n-2) seconds. Retries are
 * counted by attempts started, whatever ended the earlier ones; a target never sent (timed out
 * waiting for its device) is not retried.
 */
export function nextAttemptTime(
  policy: RetryPolicy | null,
  status: 'failed' | 'timed_out',
  attempt: number,
  now: Millis,
): Millis | null {
  if (policy === null || attempt < 1) return null;
  const retries = policy[status] ?? 0;
  if (attempt - 1 >= retries) return null;
  const next = attempt + 1;
  const delaySeconds = (policy.delay_seconds ?? 0) * (policy.backoff_factor ?? 1) ** (next - 2);
  return now + Math.round(delaySeconds * 1000);
}
