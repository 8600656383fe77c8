/** The devices list: connection state and groups, with the query box and cursor paging. */

import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { DEVICE_FIELDS } from '../../src/model/device.js';
import type { Device } from './api.js';
import { OrderBy } from './jobs.js';
import { go, href, type Route } from './route.js';
import { ErrorNote, loadPage, Pager, QueryBox, Time, useCursorPaging, usePolling } from './ui.js';

const PAGE_SIZE = 100;
const SORTABLE = DEVICE_FIELDS.filter((field) => field !== 'tags');

export function DevicesPage(props: { route: Route }): VNode {
  const query = props.route.params.get('query') ?? '';
  const orderby = props.route.params.get('orderby') ?? 'id asc';
  const paging = useCursorPaging(`${query}\n${orderby}`);
  const { data: page, error } = usePolling(
    () =>
      loadPage<Device>('/ws/v1/devices/inventory', {
        query,
        orderby,
        size: PAGE_SIZE,
        cursor: paging.cursor,
      }),
    `${query}\n${orderby}\n${paging.cursor ?? ''}`,
    '/ws/v1/events?topics=devices',
  );
  const inGroup = (group: string) =>
    href('devices', { query: `group startsWith '${group.replaceAll("'", "''")}'`, orderby });
  return html`<section aria-labelledby="devices-title">
    <h1 id="devices-title" tabindex="-1">Devices</h1>
    <${QueryBox}
      id="device-query"
      label="Query"
      value=${query}
      example="connection_status = 'disconnected' and group startsWith '/NorthWest'"
      error=${error}
      onSubmit=${(text: string) => go('devices', { query: text, orderby })}
    >
      <${OrderBy} id="device-order" fields=${SORTABLE} value=${orderby} onChange=${(next: string) => go('devices', { query, orderby: next })} />
    <//>
    ${error?.status === 400 ? null : html`<${ErrorNote} error=${error} />`}
    ${
      page === null
        ? null
        : page.list.length === 0
          ? html`<p class="muted">No device matches.</p>`
          : html`<div class="table-wrap">
            <table class="devices">
              <thead>
                <tr>
                  <th scope="col">Device</th>
                  <th scope="col">Connection</th>
                  <th scope="col">Group</th>
                  <th scope="col" class="wide">Tags</th>
                  <th scope="col" class="wide">Last connected</th>
                </tr>
              </thead>
              <tbody>
                ${page.list.map(
                  (device) => html`<tr key=${device.id}>
                    <td><span class="mono">${device.id}</span>${device.name === null ? null : html`<br /><span class="small">${device.name}</span>`}</td>
                    <td><span class=${`presence ${device.connection_status}`}>${device.connection_status}</span></td>
                    <td>${device.group === '' ? html`<span class="muted">—</span>` : html`<a href=${inGroup(device.group)}>${device.group}</a>`}</td>
                    <td class="wide">${device.tags.join(', ')}</td>
                    <td class="wide"><${Time} value=${device.last_connect} /></td>
                  </tr>`,
                )}
              </tbody>
            </table>
          </div>`
    }
    <${Pager} page=${page} pageNumber=${paging.pageNumber} onNext=${paging.next} onPrevious=${paging.previous} noun="devices" />
  </section>`;
}
