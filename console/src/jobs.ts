/** The jobs list: query box, order, cursor paging, refreshed while shown. */

import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { JOB_FIELDS } from '../../src/model/job.js';
import { call, type Job, type Page, withParams } from './api.js';
import { go, href, type Route } from './route.js';
import { ErrorNote, Pager, QueryBox, StateBar, Status, Time, useCursorPaging, usePolling } from './ui.js';

const PAGE_SIZE = 50;

const queryOf = (route: Route) => route.params.get('query') ?? '';
const orderbyOf = (route: Route) => route.params.get('orderby') ?? 'id desc';

/** The request of a jobs page: its loads, and the one a navigation to it starts (main.ts). */
export function jobsPagePath(route: Route, cursor?: string): string {
  return withParams('/ws/v1/jobs/inventory', {
    query: queryOf(route),
    orderby: orderbyOf(route),
    size: PAGE_SIZE,
    cursor,
  });
}

export function OrderBy(props: {
  id: string;
  fields: readonly string[];
  value: string;
  onChange: (orderby: string) => void;
}): VNode {
  const [field = props.fields[0] ?? 'id', direction = 'desc'] = props.value.split(/\s+/);
  const set = (nextField: string, nextDirection: string) => props.onChange(`${nextField} ${nextDirection}`);
  return html`<span class="orderby">
    <label for=${`${props.id}-field`}>Order by</label>
    <select id=${`${props.id}-field`} value=${field} onChange=${(event: Event) => set((event.target as HTMLSelectElement).value, direction)}>
      ${props.fields.map((name) => html`<option value=${name}>${name}</option>`)}
    </select>
    <label class="visually-hidden" for=${`${props.id}-direction`}>Direction</label>
    <select id=${`${props.id}-direction`} value=${direction} onChange=${(event: Event) => set(field, (event.target as HTMLSelectElement).value)}>
      <option value="desc">descending</option>
      <option value="asc">ascending</option>
    </select>
  </span>`;
}

export function JobsPage(props: { route: Route }): VNode {
  const query = queryOf(props.route);
  const orderby = orderbyOf(props.route);
  const paging = useCursorPaging(`${query}\n${orderby}`);
  const { data: page, error } = usePolling(
    () => call<Page<Job>>('GET', jobsPagePath(props.route, paging.cursor)),
    `${query}\n${orderby}\n${paging.cursor ?? ''}`,
    '/ws/v1/events?topics=jobs',
  );
  return html`<section aria-labelledby="jobs-title">
    <div class="page-head">
      <h1 id="jobs-title" tabindex="-1">Jobs</h1>
      <a class="button primary" href=${href('new')}>New job</a>
    </div>
    <${QueryBox}
      id="job-query"
      label="Query"
      value=${query}
      example="job_status = 'in_progress' and job_type = 'reboot'"
      error=${error}
      onSubmit=${(text: string) => go('jobs', { query: text, orderby })}
    >
      <${OrderBy} id="job-order" fields=${JOB_FIELDS} value=${orderby} onChange=${(next: string) => go('jobs', { query, orderby: next })} />
    <//>
    ${error?.status === 400 ? null : html`<${ErrorNote} error=${error} />`}
    ${
      page === null
        ? error === null
          ? html`<p class="muted">Loading…</p>`
          : null
        : page.list.length === 0
          ? html`<p class="muted">No job matches.</p>`
          : html`<div class="table-wrap">
            <table class="jobs">
              <thead>
                <tr>
                  <th scope="col">Job</th>
                  <th scope="col">Status</th>
                  <th scope="col">Type</th>
                  <th scope="col" class="wide">Description</th>
                  <th scope="col">Targets</th>
                  <th scope="col" class="wide">Submitted</th>
                  <th scope="col" class="wide">By</th>
                </tr>
              </thead>
              <tbody>
                ${page.list.map(
                  (job) => html`<tr key=${job.id}>
                    <td><a href=${href(`jobs/${job.id}`)}>${`#${job.id}`}</a></td>
                    <td><${Status} value=${job.job_status} /></td>
                    <td>${job.job_type}</td>
                    <td class="wide">${job.description ?? ''}</td>
                    <td class="targets-cell">
                      <${StateBar} job=${job} />
                      <span class="small">${`${job.target_count - job.progress_pending} / ${job.target_count} ended`}</span>
                    </td>
                    <td class="wide"><${Time} value=${job.job_submit_time} /></td>
                    <td class="wide">${job.username}</td>
                  </tr>`,
                )}
              </tbody>
            </table>
          </div>`
    }
    <${Pager} page=${page} pageNumber=${paging.pageNumber} onNext=${paging.next} onPrevious=${paging.previous} noun="jobs" />
  </section>`;
}
