import type { FastifyInstance } from 'fastify';
import { describeRoute, summary } from '../../../../schemas.js';

export const DEVICES_SUMMARY = {
  inventory_uri: '/ws/v1/devices/inventory',
  inventory_xml_uri: '/ws/v1/devices/inventory.xml',
  bulk_uri: '/ws/v1/devices/bulk',
} as const;

/** `GET /ws/v1/devices`: where the device routes are. */
export function deviceRoutes(app: FastifyInstance): void {
  app.get(
    '/ws/v1/devices',
    {
      schema: describeRoute('devicesSummary', 'devices', 'Where the device routes are', {
        response: { 200: summary(DEVICES_SUMMARY) },
      }),
    },
    async () => DEVICES_SUMMARY,
  );
}
