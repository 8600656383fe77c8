import type { FastifyInstance } from 'fastify';
import { describeRoute, summary } from '../../../../schemas.js';

export const GROUPS_SUMMARY = {
  inventory_uri: '/ws/v1/groups/inventory',
  inventory_xml_uri: '/ws/v1/groups/inventory.xml',
  bulk_uri: '/ws/v1/groups/bulk',
} as const;

/** `GET /ws/v1/groups`: where the group routes are. */
export function groupRoutes(app: FastifyInstance): void {
  app.get(
    '/ws/v1/groups',
    {
      schema: describeRoute('groupsSummary', 'groups', 'Where the group routes are', {
        response: { 200: summary(GROUPS_SUMMARY) },
      }),
    },
    async () => GROUPS_SUMMARY,
  );
}
