import { isFinishedJob } from '../model/job.js';
import type { JobService } from './service.js';

/** How often a waiter reads the job anyway: reports stored by another node, and timeouts, tell this one nothing. */
export const WAIT_POLL_MS = 1000;

/**
 * Resolves once the job is finished (or gone), `timeoutMs` have passed, or `signal` aborts. It reads
 * the job when this node stores a report about it, and every `pollMs` in case another node did.
 */
export function waitForJob(
  jobs: JobService,
  accountId: number,
  jobId: number,
  { timeoutMs, signal, pollMs = WAIT_POLL_MS }: { timeoutMs: number; signal?: AbortSignal; pollMs?: number },
): Promise<void> {
  return new Promise((resolve) => {
    let done = false;
    let reading = false;
    let readAgain = false;
    const finish = () => {
      if (done) return;
      done = true;
      unwatch();
      clearInterval(poll);
      clearTimeout(timer);
      signal?.removeEventListener('abort', finish);
      resolve();
    };
    /** One read at a time; a change seen meanwhile reads once more. */
    const check = async () => {
      if (reading) {
        readAgain = true;
        return;
      }
      reading = true;
      try {
        do {
          readAgain = false;
          const job = await jobs.store.getJob(accountId, jobId);
          if (job === undefined || isFinishedJob(job.job_status)) return finish();
        } while (readAgain && !done);
      } catch {
        // the caller reads the job again, and meets the error there
        finish();
      } finally {
        reading = false;
      }
    };
    const unwatch = jobs.watchJob(jobId, () => void check());
    const poll = setInterval(() => void check(), pollMs);
    const timer = setTimeout(finish, timeoutMs);
    if (signal?.aborted) return finish();
    signal?.addEventListener('abort', finish, { once: true });
    void check();
  });
}
