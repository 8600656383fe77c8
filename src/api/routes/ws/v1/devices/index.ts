import type { FastifyInstance } from 'fastify';

export const DEVICES_SUMMARY = {
  inventory_uri: '/ws/v1/devices/inventory',
  inventory_xml_uri: '/ws/v1/devices/inventory.xml',
  bulk_uri: '/ws/v1/devices/bulk',
} as const;

/** `GET /ws/v1/devices`: where the device routes are. */
export function deviceRoutes(app: FastifyInstance): void {
  app.get('/ws/v1/devices', async () => DEVICES_SUMMARY);
}
