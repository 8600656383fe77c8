/** The create-job form: target selection, a preview of the resolved targets, then the job. */

import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useState } from 'preact/hooks';
import { JOB_TYPES } from '../../src/model/job.js';
import { ApiError, call, type JobDetail, type TargetPreview } from './api.js';
import { go } from './route.js';

interface Form {
  job_type: string;
  description: string;
  devices: string;
  groups: string;
  tags: string;
  query: string;
  all: boolean;
  payload: string;
  timeout: string;
  offline_timeout: string;
  // rollout controls (CONTRACT §9), each left out of the body when empty
  max_per_minute: string;
  max_in_flight: string;
  abort_percent: string;
  abort_min: string;
  abort_action: string;
  retries: string;
  retry_delay: string;
  retry_backoff: string;
  start_time: string;
  window_cron: string;
  window_minutes: string;
  window_zone: string;
}

const EMPTY: Form = {
  job_type: 'reboot',
  description: '',
  devices: '',
  groups: '',
  tags: '',
  query: '',
  all: false,
  payload: '',
  timeout: '',
  offline_timeout: '',
  max_per_minute: '',
  max_in_flight: '',
  abort_percent: '',
  abort_min: '',
  abort_action: 'cancel',
  retries: '',
  retry_delay: '',
  retry_backoff: '',
  start_time: '',
  window_cron: '',
  window_minutes: '',
  window_zone: '',
};

const PREVIEW_IDS_SHOWN = 20;

/** Items separated by commas or line breaks. */
const items = (text: string) =>
  text
    .split(/[,\n]/)
    .map((item) => item.trim())
    .filter((item) => item !== '');

/** The create body of the form (CONTRACT §5); a payload that is not JSON is refused here. */
function bodyOf(form: Form): Record<string, unknown> {
  const targets: Record<string, unknown> = {};
  for (const key of ['devices', 'groups', 'tags'] as const) {
    if (items(form[key]).length > 0) targets[key] = items(form[key]);
  }
  if (form.query.trim() !== '') targets.query = form.query.trim();
  if (form.all) targets.all = true;
  const body: Record<string, unknown> = { job_type: form.job_type, targets };
  if (form.description.trim() !== '') body.description = form.description.trim();
  if (form.payload.trim() !== '') {
    try {
      body.payload = JSON.parse(form.payload);
    } catch {
      throw new ApiError(400, 'The payload is not valid JSON');
    }
  }
  for (const key of ['timeout', 'offline_timeout'] as const) {
    if (form[key].trim() !== '') body[key] = Number(form[key]);
  }
  Object.assign(body, controlsOf(form));
  return body;
}

/** The rollout controls the form fills in; the service says what is wrong with a value. */
function controlsOf(form: Form): Record<string, unknown> {
  const given = (text: string) => text.trim() !== '';
  const controls: Record<string, unknown> = {};
  const rollout: Record<string, number> = {};
  if (given(form.max_per_minute)) rollout.max_per_minute = Number(form.max_per_minute);
  if (given(form.max_in_flight)) rollout.max_in_flight = Number(form.max_in_flight);
  if (Object.keys(rollout).length > 0) controls.rollout = rollout;
  if (given(form.abort_percent)) {
    controls.abort = [
      {
        failure: 'any',
        threshold_percent: Number(form.abort_percent),
        min_executed: given(form.abort_min) ? Number(form.abort_min) : 1,
        action: form.abort_action,
      },
    ];
  }
  if (given(form.retries)) {
    controls.retry = {
      failed: Number(form.retries),
      timed_out: Number(form.retries),
      ...(given(form.retry_delay) ? { delay_seconds: Number(form.retry_delay) } : {}),
      ...(given(form.retry_backoff) ? { backoff_factor: Number(form.retry_backoff) } : {}),
    };
  }
  const schedule: Record<string, unknown> = {};
  if (given(form.start_time)) {
    const start = new Date(form.start_time);
    if (Number.isNaN(start.getTime())) throw new ApiError(400, 'The start time is not a date and time');
    schedule.start_time = start.toISOString();
  }
  if (given(form.window_cron)) {
    schedule.windows = [
      {
        cron: form.window_cron.trim(),
        duration_minutes: Number(form.window_minutes || '60'),
        ...(given(form.window_zone) ? { timezone: form.window_zone.trim() } : {}),
      },
    ];
  }
  if (Object.keys(schedule).length > 0) controls.schedule = schedule;
  return controls;
}

export function CreatePage(): VNode {
  const [form, setForm] = useState<Form>(EMPTY);
  /** The preview of the body as it is now; any change to the form asks for a new one. */
  const [preview, setPreview] = useState<{ body: string; result: TargetPreview } | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);

  const set = (key: keyof Form) => (event: Event) => {
    const input = event.target as HTMLInputElement;
    setForm({ ...form, [key]: input.type === 'checkbox' ? input.checked : input.value });
  };
  const send = async (action: (body: Record<string, unknown>) => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await action(bodyOf(form));
    } catch (caught) {
      setError(caught instanceof ApiError ? caught : new ApiError(0, String(caught)));
    }
    setBusy(false);
  };
  const previewTargets = () =>
    send(async (body) => {
      setPreview(null);
      setPreview({
        body: JSON.stringify(body),
        result: await call<TargetPreview>('POST', '/ws/v1/jobs/preview', body),
      });
    });
  const create = () =>
    send(async (body) => {
      const job = await call<JobDetail>('POST', '/ws/v1/jobs/inventory', body);
      go(`jobs/${job.id}`);
    });
  let current: string | null;
  try {
    current = JSON.stringify(bodyOf(form));
  } catch {
    current = null;
  }
  const previewed = preview !== null && preview.body === current ? preview.result : null;

  const field = (key: keyof Form, label: string, hint: string, multiline = false) => {
    const id = `new-${key}`;
    const value = form[key] as string;
    return html`<div class="field">
      <label for=${id}>${label}</label>
      ${
        multiline
          ? html`<textarea id=${id} rows="3" class="mono" value=${value} onInput=${set(key)} aria-describedby=${`${id}-hint`}></textarea>`
          : html`<input id=${id} type="text" value=${value} onInput=${set(key)} aria-describedby=${`${id}-hint`} />`
      }
      <small id=${`${id}-hint`}>${hint}</small>
    </div>`;
  };

  return html`<section aria-labelledby="new-title">
    <h1 id="new-title" tabindex="-1">New job</h1>
    <form
      class="create"
      onSubmit=${(event: Event) => {
        event.preventDefault();
        if (previewed === null) previewTargets();
        else create();
      }}
    >
      <div class="field">
        <label for="new-job_type">Job type</label>
        <select id="new-job_type" value=${form.job_type} onChange=${set('job_type')}>
          ${JOB_TYPES.map((type) => html`<option value=${type}>${type}</option>`)}
        </select>
      </div>
      ${field('description', 'Description', 'Optional: what the job is for.')}
      <fieldset>
        <legend>Targets: every device that any of these selects</legend>
        ${field('devices', 'Devices', 'Device ids, separated by commas or lines.', true)}
        ${field('groups', 'Groups', 'Group paths such as /NorthWest; a group includes its subgroups.')}
        ${field('tags', 'Tags', 'Tags separated by commas.')}
        ${field('query', 'Device query', "The v1 query language, e.g. connection_status = 'connected'.")}
        <div class="field check">
          <input id="new-all" type="checkbox" checked=${form.all} onChange=${set('all')} />
          <label for="new-all">Every device of the account</label>
        </div>
      </fieldset>
      ${field('payload', 'Payload', 'Optional JSON sent to each device with the request.', true)}
      <div class="field-row">
        ${field('timeout', 'Timeout (s)', 'In progress at most; default 600.')}
        ${field('offline_timeout', 'Offline timeout (s)', 'Queued at most; default 86400.')}
      </div>
      <fieldset>
        <legend>Rollout (optional): how fast, when to stop, retries, when</legend>
        <div class="field-row">
          ${field('max_per_minute', 'Requests per minute', 'At most, spread evenly (1-100000).')}
          ${field('max_in_flight', 'In progress at once', 'At most (1-100000).')}
        </div>
        <div class="field-row">
          ${field('abort_percent', 'Abort above (% failed)', 'Failed or timed out, of the ended targets.')}
          ${field('abort_min', 'After ended targets', 'The rule waits for this many (default 1).')}
          <div class="field">
            <label for="new-abort_action">Then</label>
            <select id="new-abort_action" value=${form.abort_action} onChange=${set('abort_action')}>
              <option value="cancel">cancel the job</option>
              <option value="pause">pause the job</option>
            </select>
          </div>
        </div>
        <div class="field-row">
          ${field('retries', 'Retries', 'Of a failed or timed-out target (0-10).')}
          ${field('retry_delay', 'Retry delay (s)', 'Before the second attempt (default 0).')}
          ${field('retry_backoff', 'Backoff factor', 'Each later delay is multiplied by it (1-10).')}
        </div>
        <div class="field-row">
          ${field('start_time', 'Start', 'Not before this local date and time, e.g. 2026-12-24 02:00.')}
          ${field('window_cron', 'Window (cron)', 'Sends only in windows opening then, e.g. 0 2 * * *.')}
          ${field('window_minutes', 'Window length (min)', 'Default 60.')}
          ${field('window_zone', 'Time zone', 'IANA, e.g. Europe/Zurich; default UTC.')}
        </div>
      </fieldset>
      ${error === null ? null : html`<p class="error" role="alert">${error.message}</p>`}
      <div class="preview" aria-live="polite">
        ${
          previewed === null
            ? html`<p class="muted">Preview the targets before creating the job.</p>`
            : html`<p>
                <strong data-field="preview-count">${previewed.target_count}</strong>
                ${` device${previewed.target_count === 1 ? '' : 's'} targeted, `}
                <strong data-field="preview-offline">${previewed.offline}</strong>
                ${' of them offline now.'}
              </p>
              <ul class="mono preview-ids">
                ${previewed.list.slice(0, PREVIEW_IDS_SHOWN).map((id) => html`<li>${id}</li>`)}
                ${previewed.target_count > PREVIEW_IDS_SHOWN ? html`<li class="muted">and ${previewed.target_count - PREVIEW_IDS_SHOWN} more</li>` : null}
              </ul>`
        }
      </div>
      <div class="controls">
        <button type="button" disabled=${busy} onClick=${previewTargets}>Preview targets</button>
        <button type="button" class="primary" disabled=${busy || previewed === null} onClick=${create}>Create job</button>
      </div>
    </form>
  </section>`;
}
