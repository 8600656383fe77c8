import type { FastifyInstance } from 'fastify';
import { type ApiContext, requestUser } from '../../../../context.js';
import { csvRoute, pageRoutes } from '../../../../listing.js';
import { GROUPS } from '../../../../resources.js';
import { group } from '../../../../schemas.js';

/** `GET /ws/v1/groups/inventory` (JSON or XML) and `GET /ws/v1/groups/bulk` (CSV): the account's groups. */
export function groupInventoryRoutes(app: FastifyInstance, { store, cursors }: ApiContext): void {
  pageRoutes(
    app,
    '/ws/v1/groups/inventory',
    {
      operationId: 'listGroups',
      tag: 'groups',
      summary: "A page of the account's groups, each with its devices counted with those below",
      item: group,
    },
    (request) => ({
      resource: GROUPS,
      cursors,
      scope: { accountId: requestUser(request).account_id },
      fetch: (listRequest) => store.listGroups(listRequest),
    }),
  );
  csvRoute(
    app,
    '/ws/v1/groups/bulk',
    { operationId: 'exportGroups', tag: 'groups', summary: 'Every matching group as CSV' },
    GROUPS,
    (csvRequest) => store.exportGroups(csvRequest),
  );
}
