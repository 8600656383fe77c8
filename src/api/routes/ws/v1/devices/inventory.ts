import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { DeviceCreateInput } from '../../../../../jobs/service.js';
import { type DeviceInput, normalizeDeviceId } from '../../../../../model/device.js';
import { badRequest, notFound } from '../../../../../model/error.js';
import { type ApiContext, requestUser } from '../../../../context.js';
import { refuseBody, wrapSingleBody } from '../../../../errors.js';
import { pageRoutes } from '../../../../listing.js';
import { DEVICES, deviceJson } from '../../../../resources.js';
import {
  byIdResults,
  createdDevices,
  describeRoute,
  device,
  deviceCreateBody,
  deviceIdParams,
  deviceToken,
  deviceTokenBody,
  deviceUpdateBody,
} from '../../../../schemas.js';

type DeviceRequest = FastifyRequest<{ Params: { id: string } }>;

/** `/ws/v1/devices/inventory…`: list (JSON or XML), create, get, update, delete, new token. */
export function deviceInventoryRoutes(app: FastifyInstance, { store, jobs, cursors }: ApiContext): void {
  pageRoutes(
    app,
    '/ws/v1/devices/inventory',
    { operationId: 'listDevices', tag: 'devices', summary: 'A page of devices', item: device },
    (request) => ({
      resource: DEVICES,
      cursors,
      scope: { accountId: requestUser(request).account_id },
      fetch: (listRequest) => store.listDevices(listRequest),
    }),
  );

  app.post<{ Body: DeviceCreateInput[] }>(
    '/ws/v1/devices/inventory',
    {
      schema: describeRoute('createDevices', 'devices', 'Register one device or many', {
        body: deviceCreateBody,
        response: { 201: createdDevices },
      }),
      preValidation: async (request) => wrapSingleBody(request, 'a device'),
    },
    async (request, reply) => {
      const created = await jobs.createDevices(requestUser(request).account_id, request.body);
      return reply.status(201).send({
        count: created.length,
        size: created.length,
        list: created.map((device) => ({ ...deviceJson(device), device_token: device.device_token })),
      });
    },
  );

  const byId = (operationId: string, summary: string, schema: Record<string, unknown> = {}) =>
    describeRoute(operationId, 'devices', summary, { params: deviceIdParams, ...schema });

  app.get(
    '/ws/v1/devices/inventory/:id',
    { schema: byId('getDevice', 'One device', { response: { 200: device } }) },
    async (request: DeviceRequest) => {
      const device = await store.getDevice(
        requestUser(request).account_id,
        normalizeDeviceId(request.params.id),
      );
      if (device === undefined) throw notFound(`Device ${request.params.id} not found`);
      return deviceJson(device);
    },
  );

  app.put<{ Params: { id: string }; Body: DeviceInput & { id?: string } }>(
    '/ws/v1/devices/inventory/:id',
    {
      schema: byId('updateDevice', "Change a device's fields", {
        body: deviceUpdateBody,
        response: { 200: device },
      }),
    },
    async (request) => {
      const { id, ...patch } = request.body;
      if (id !== undefined && normalizeDeviceId(id) !== normalizeDeviceId(request.params.id)) {
        throw badRequest(
          `body.id '${id}' differs from the device in the path: a device's id cannot be changed`,
        );
      }
      return deviceJson(await jobs.updateDevice(requestUser(request).account_id, request.params.id, patch));
    },
  );

  // Answered like a job delete: the ids removed.
  app.delete<{ Params: { id: string } }>(
    '/ws/v1/devices/inventory/:id',
    {
      schema: byId('deleteDevice', 'Remove a device', {
        response: { 200: byIdResults(device.properties.id) },
      }),
      preValidation: refuseBody,
    },
    async (request) => {
      await jobs.deleteDevice(requestUser(request).account_id, request.params.id);
      return { count: 1, list: [normalizeDeviceId(request.params.id)] };
    },
  );

  app.post<{ Params: { id: string }; Body: { device_token?: string } }>(
    '/ws/v1/devices/inventory/:id/token',
    {
      schema: byId('replaceDeviceToken', 'A new device token (MQTT password)', {
        body: deviceTokenBody,
        response: { 200: deviceToken },
      }),
      preValidation: async (request) => {
        if (request.body === undefined || request.body === null) request.body = {};
      },
    },
    async (request) =>
      jobs.replaceDeviceToken(requestUser(request).account_id, request.params.id, request.body.device_token),
  );
}
