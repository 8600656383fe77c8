import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isoTime } from '../../../../model/csv.js';
import { badRequest, notFound } from '../../../../model/error.js';
import type { Monitor, MonitorSettings } from '../../../../model/monitor.js';
import type { MonitorPatch } from '../../../../store/store.js';
import { type ApiContext, requestUser } from '../../../context.js';
import { refuseBody } from '../../../errors.js';
import { messageJson } from '../../../formats/messages.js';
import { pageRoutes } from '../../../listing.js';
import { parseSize, type RawQuery, single } from '../../../params.js';
import { type ResourceInfo, toJson } from '../../../resources.js';
import {
  byIdResults,
  describeRoute,
  historyQuery,
  message,
  monitor,
  monitorCreateBody,
  monitorIdParams,
  monitorUpdateBody,
  page,
  summary,
} from '../../../schemas.js';

/** The fields a client sees of a monitor, in order (never `auth_token` nor `secret`). */
const MONITOR_FIELDS = [
  'id',
  'customer_id',
  'type',
  'topics',
  'url',
  'method',
  'format',
  'headers',
  'batch_size',
  'batch_duration',
  'compression',
  'persistent',
  'description',
  'status',
  'last_sent',
  'last_sent_uuid',
] as const;

/** A monitor as shown: its extra headers by name only, their values (often credentials) hidden. */
const shown = (monitor: Monitor): Monitor => ({
  ...monitor,
  headers: monitor.headers.map((header) => header.slice(0, header.indexOf(':')).trim()),
});

export const MONITORS: ResourceInfo<Monitor> = {
  name: 'monitors',
  element: 'monitor',
  fields: MONITOR_FIELDS,
  csvFields: MONITOR_FIELDS,
  timestampFields: new Set(['last_sent']),
  orderFields: MONITOR_FIELDS.filter(
    (field) => field !== 'topics' && field !== 'headers' && field !== 'persistent',
  ),
  defaultOrder: { field: 'id', direction: 'asc' },
  key: (monitor) => monitor.id,
};

const monitorJson = (monitor: Monitor) => toJson(MONITORS, MONITOR_FIELDS, shown(monitor));

const DEFAULTS: Omit<MonitorSettings, 'topics' | 'url'> = {
  type: 'http',
  method: 'POST',
  format: 'json',
  auth_token: null,
  headers: [],
  batch_size: 100,
  batch_duration: 10,
  compression: 'none',
  persistent: true,
  secret: null,
  description: null,
};

/** A header line a request may carry: a token name, a colon, a value without line breaks. */
const HEADER_LINE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r\n]*$/;

/** Checks what the schema cannot: the URL's scheme and the header lines. Topics count once each. */
function checked<T extends Partial<MonitorSettings>>(settings: T): T {
  if (settings.url !== undefined) {
    let url: URL;
    try {
      url = new URL(settings.url);
    } catch {
      throw badRequest(`Invalid url '${settings.url}': expected an absolute http:// or https:// URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw badRequest(`Invalid url '${settings.url}': expected http:// or https://`);
    }
  }
  for (const header of settings.headers ?? []) {
    if (!HEADER_LINE.test(header)) {
      throw badRequest(`Invalid header '${header}' in headers: expected 'Name: value'`);
    }
  }
  return settings.topics === undefined ? settings : { ...settings, topics: [...new Set(settings.topics)] };
}

function parseMonitorId(text: string): number {
  const id = Number(text.trim());
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(id)) {
    throw badRequest(`Invalid monitor id '${text}': expected a whole number`);
  }
  return id;
}

/** An ISO 8601 time of the history's query. */
function parseTime(raw: RawQuery, name: string): number | undefined {
  const text = single(raw, name);
  if (text === undefined || text.trim() === '') return undefined;
  const millis = Date.parse(text);
  if (Number.isNaN(millis)) throw badRequest(`Invalid ${name} '${text}': expected an ISO 8601 time`);
  return millis;
}

type MonitorRequest = FastifyRequest<{ Params: { id: string } }>;

export const MONITORS_SUMMARY = {
  inventory_uri: '/ws/v1/monitors/inventory',
  inventory_xml_uri: '/ws/v1/monitors/inventory.xml',
  history_uri: '/ws/v1/monitors/history/{id}',
  events_uri: '/ws/v1/events',
} as const;

/** `/ws/v1/monitors/inventory…` and `/ws/v1/monitors/history/{id}` (§10). */
export function monitorRoutes(app: FastifyInstance, { store, cursors }: ApiContext): void {
  app.get(
    '/ws/v1/monitors',
    {
      schema: describeRoute('monitorsSummary', 'monitors', 'Where the monitor routes are', {
        response: { 200: summary(MONITORS_SUMMARY) },
      }),
    },
    async () => MONITORS_SUMMARY,
  );

  pageRoutes(
    app,
    '/ws/v1/monitors/inventory',
    { operationId: 'listMonitors', tag: 'monitors', summary: 'A page of monitors', item: monitor },
    (request) => ({
      resource: MONITORS,
      cursors,
      scope: { accountId: requestUser(request).account_id },
      fetch: (listRequest) => store.listMonitors(listRequest),
    }),
  );

  app.post<{ Body: Partial<MonitorSettings> & Pick<MonitorSettings, 'topics' | 'url'> }>(
    '/ws/v1/monitors/inventory',
    {
      schema: describeRoute('createMonitor', 'monitors', 'Create a monitor: changes are pushed to its url', {
        body: monitorCreateBody,
        response: { 201: monitor },
      }),
    },
    async (request, reply) => {
      const settings = checked({ ...DEFAULTS, ...request.body });
      const created = await store.createMonitor(requestUser(request).account_id, settings, Date.now());
      return reply
        .status(201)
        .header('Location', `/ws/v1/monitors/inventory/${created.id}`)
        .send(monitorJson(created));
    },
  );

  const byId = (operationId: string, summary: string, schema: Record<string, unknown> = {}) =>
    describeRoute(operationId, 'monitors', summary, { params: monitorIdParams, ...schema });
  const found = (id: number, monitor: Monitor | undefined) => {
    if (monitor === undefined) throw notFound(`Monitor ${id} not found`);
    return monitor;
  };

  app.get(
    '/ws/v1/monitors/inventory/:id',
    { schema: byId('getMonitor', 'One monitor', { response: { 200: monitor } }) },
    async (request: MonitorRequest) => {
      const id = parseMonitorId(request.params.id);
      return monitorJson(found(id, await store.getMonitor(requestUser(request).account_id, id)));
    },
  );

  app.put<{ Params: { id: string }; Body: MonitorPatch }>(
    '/ws/v1/monitors/inventory/:id',
    {
      schema: byId('updateMonitor', "Change a monitor's settings, or resume it with status active", {
        body: monitorUpdateBody,
        response: { 200: monitor },
      }),
    },
    async (request) => {
      const id = parseMonitorId(request.params.id);
      const patch = checked(request.body ?? {});
      return monitorJson(
        found(id, await store.updateMonitor(requestUser(request).account_id, id, patch, Date.now())),
      );
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/ws/v1/monitors/inventory/:id',
    {
      schema: byId('deleteMonitor', 'Remove a monitor', {
        response: { 200: byIdResults(monitor.properties.id) },
      }),
      preValidation: refuseBody,
    },
    async (request) => {
      const id = parseMonitorId(request.params.id);
      if (!(await store.deleteMonitor(requestUser(request).account_id, id)))
        throw notFound(`Monitor ${id} not found`);
      return { count: 1, list: [id] };
    },
  );

  app.get(
    '/ws/v1/monitors/history/:id',
    {
      schema: byId('monitorHistory', "A monitor's stored events, sent or not, oldest first", {
        querystring: historyQuery,
        response: { 200: page(message) },
      }),
    },
    async (request: MonitorRequest) => {
      const accountId = requestUser(request).account_id;
      const id = parseMonitorId(request.params.id);
      const monitor = found(id, await store.getMonitor(accountId, id));
      const raw = request.query as RawQuery;
      const from = parseTime(raw, 'start_time');
      const until = parseTime(raw, 'end_time');
      const size = parseSize(single(raw, 'size'));
      const binding = {
        accountId,
        resource: 'monitor-history',
        jobId: id,
        query: `${from ?? ''}/${until ?? ''}`,
        orderField: 'id',
        direction: 'asc',
      };
      const cursorText = single(raw, 'cursor');
      const after =
        cursorText === undefined || cursorText === '' ? null : cursors.decode(binding, cursorText);
      const events = await store.listEvents({
        accountId,
        afterId: after === null ? 0 : Number(after.key),
        topics: monitor.topics,
        // Events from before the monitor existed were never its own.
        from: Math.max(from ?? 0, monitor.created_at),
        until,
        limit: size + 1,
      });
      const list = events.slice(0, size);
      const last = list.at(-1);
      const more = events.length > size && last !== undefined;
      const cursor = more ? cursors.encode(binding, { value: null, key: last.id }) : undefined;
      const path = request.url.split('?')[0] ?? '';
      const parameters = [
        ...(from === undefined ? [] : [`start_time=${encodeURIComponent(isoTime(from) ?? '')}`]),
        ...(until === undefined ? [] : [`end_time=${encodeURIComponent(isoTime(until) ?? '')}`]),
        `size=${size}`,
      ];
      return {
        count: list.length,
        size,
        ...(cursor === undefined
          ? {}
          : {
              cursor,
              next_uri: `${path}?${[...parameters, `cursor=${encodeURIComponent(cursor)}`].join('&')}`,
            }),
        list: list.map(messageJson),
      };
    },
  );
}
