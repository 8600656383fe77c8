/** One job: its counts as a stacked bar, its rollout state, its controls and its targets. */

import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useState } from 'preact/hooks';
import { TARGET_STATUSES } from '../../src/model/job.js';
import { ApiError, call, type JobDetail, type Target } from './api.js';
import { href } from './route.js';
import { ErrorNote, loadPage, Pager, StateSummary, Status, Time, useCursorPaging, usePolling } from './ui.js';

const TARGET_PAGE_SIZE = 100;

interface Control {
  label: string;
  /** What the user is asked to confirm. */
  confirm: string;
  method: 'PUT';
  path: string;
  danger?: boolean;
}

/**
 * The controls that apply to the job now. Pause, resume and retry exist only on a service with
 * rollouts (CONTRACT §9), which shows itself by the job's `rollout_state`.
 */
function controlsOf(job: JobDetail): Control[] {
  const controls: Control[] = [];
  const unfinished = job.job_status === 'new' || job.job_status === 'in_progress';
  const rollouts = job.rollout_state !== undefined;
  if (rollouts && unfinished && job.rollout_state !== 'paused') {
    controls.push({
      label: 'Pause',
      confirm: `Pause job ${job.id}? No new request is sent while it is paused.`,
      method: 'PUT',
      path: `/ws/v1/jobs/pause/${job.id}`,
    });
  }
  if (rollouts && job.rollout_state === 'paused') {
    controls.push({
      label: 'Resume',
      confirm: `Resume job ${job.id}?`,
      method: 'PUT',
      path: `/ws/v1/jobs/resume/${job.id}`,
    });
  }
  if (rollouts && job.progress_failures > 0) {
    const query = encodeURIComponent("status = 'failed' or status = 'timed_out'");
    controls.push({
      label: 'Retry failed',
      confirm: `Send job ${job.id} again to its ${job.progress_failures} failed or timed-out targets?`,
      method: 'PUT',
      path: `/ws/v1/jobs/${job.id}/targets/retry?query=${query}`,
    });
  }
  if (unfinished) {
    controls.push({
      label: 'Cancel',
      confirm: `Cancel job ${job.id}? Queued targets are canceled, devices working on it are told to stop.`,
      method: 'PUT',
      path: `/ws/v1/jobs/cancel/${job.id}`,
      danger: true,
    });
  }
  if ((unfinished || job.job_status === 'canceled') && job.progress_pending > 0) {
    controls.push({
      label: 'Force cancel',
      confirm: `Force cancel job ${job.id}? Its targets in progress are marked canceled at once, without waiting for their devices.`,
      method: 'PUT',
      path: `/ws/v1/jobs/cancel/${job.id}?force=true`,
      danger: true,
    });
  }
  return controls;
}

function Controls(props: { job: JobDetail; onDone: () => void }): VNode {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const run = async (control: Control) => {
    if (!window.confirm(control.confirm)) return;
    setBusy(true);
    setError(null);
    try {
      await call(control.method, control.path);
    } catch (caught) {
      setError(caught instanceof ApiError ? caught : new ApiError(0, String(caught)));
    }
    setBusy(false);
    props.onDone();
  };
  const controls = controlsOf(props.job);
  if (controls.length === 0) return html`<${ErrorNote} error=${error} />`;
  return html`<div class="controls" role="group" aria-label="Job controls">
    ${controls.map(
      (control) =>
        html`<button type="button" class=${control.danger ? 'danger' : ''} disabled=${busy} onClick=${() => run(control)}>${control.label}</button>`,
    )}
    <${ErrorNote} error=${error} />
  </div>`;
}

function Targets(props: { jobId: number }): VNode {
  const [status, setStatus] = useState('');
  const query = status === '' ? '' : `status = '${status}'`;
  const paging = useCursorPaging(query);
  const { data: page, error } = usePolling(
    () =>
      loadPage<Target>(`/ws/v1/jobs/${props.jobId}/targets`, {
        query,
        size: TARGET_PAGE_SIZE,
        cursor: paging.cursor,
      }),
    `${props.jobId}\n${query}\n${paging.cursor ?? ''}`,
    `/ws/v1/events?topics=job_targets&job_id=${props.jobId}`,
  );
  return html`<section aria-labelledby="targets-title">
    <div class="page-head">
      <h2 id="targets-title">Targets</h2>
      <span>
        <label for="target-status">Status</label>
        <select id="target-status" value=${status} onChange=${(event: Event) => setStatus((event.target as HTMLSelectElement).value)}>
          <option value="">any</option>
          ${TARGET_STATUSES.map((name) => html`<option value=${name}>${name.replace('_', ' ')}</option>`)}
        </select>
      </span>
    </div>
    <${ErrorNote} error=${error} />
    ${
      page === null
        ? null
        : page.list.length === 0
          ? html`<p class="muted">No target${status === '' ? '' : ` is ${status.replace('_', ' ')}`}.</p>`
          : html`<div class="table-wrap">
            <table class="targets">
              <thead>
                <tr>
                  <th scope="col">Device</th>
                  <th scope="col">Status</th>
                  <th scope="col" class="wide">Progress</th>
                  <th scope="col">Attempt</th>
                  <th scope="col">Message</th>
                  <th scope="col" class="wide">Started</th>
                  <th scope="col" class="wide">Ended</th>
                </tr>
              </thead>
              <tbody>
                ${page.list.map(
                  (target) => html`<tr key=${target.device_id}>
                    <td class="mono">${target.device_id}</td>
                    <td><${Status} value=${target.status} /></td>
                    <td class="wide">${target.progress} %</td>
                    <td>${target.attempt ?? ''}</td>
                    <td>${target.message ?? ''}</td>
                    <td class="wide"><${Time} value=${target.start_time} /></td>
                    <td class="wide"><${Time} value=${target.end_time} /></td>
                  </tr>`,
                )}
              </tbody>
            </table>
          </div>`
    }
    <${Pager} page=${page} pageNumber=${paging.pageNumber} onNext=${paging.next} onPrevious=${paging.previous} noun="targets" />
  </section>`;
}

export function JobPage(props: { jobId: number }): VNode {
  const {
    data: job,
    error,
    reload,
  } = usePolling(
    () => call<JobDetail>('GET', `/ws/v1/jobs/${props.jobId}`),
    String(props.jobId),
    `/ws/v1/events?topics=jobs&job_id=${props.jobId}`,
  );
  return html`<article aria-labelledby="job-title">
    <p><a href=${href('jobs')}>← Jobs</a></p>
    <div class="page-head">
      <h1 id="job-title" tabindex="-1">Job ${props.jobId}${job === null ? '' : ` · ${job.job_type}`}</h1>
      ${job === null ? null : html`<${Status} value=${job.job_status} />`}
    </div>
    <${ErrorNote} error=${error} />
    ${
      job === null
        ? null
        : html`<div class="job-summary">
            ${job.description === null ? null : html`<p>${job.description}</p>`}
            <dl class="facts">
              <div><dt>Submitted</dt><dd><${Time} value=${job.job_submit_time} /> by ${job.username}</dd></div>
              <div><dt>Completed</dt><dd><${Time} value=${job.job_completion_time} /></dd></div>
              <div><dt>Targets</dt><dd>${job.target_count}</dd></div>
              ${job.rollout_state === undefined ? null : html`<div><dt>Rollout</dt><dd data-field="rollout_state">${job.rollout_state}</dd></div>`}
              ${job.abort_reason == null ? null : html`<div><dt>Aborted because</dt><dd>${job.abort_reason}</dd></div>`}
              <div><dt>Timeouts</dt><dd>${job.timeout} s in progress, ${job.offline_timeout} s queued</dd></div>
            </dl>
            <${StateSummary} job=${job} />
            <${Controls} job=${job} onDone=${reload} />
          </div>
          <${Targets} jobId=${props.jobId} />`
    }
  </article>`;
}
