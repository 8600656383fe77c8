import {
  DEVICE_NUMBER_FIELDS,
  DEVICE_TEXT_FIELDS,
  HEALTH_STATUSES,
  RESTRICTED_STATUSES,
} from '../model/device.js';
import { JOB_TYPES } from '../model/job.js';

/**
 * Request body shapes (JSON Schema for Ajv, which fastify runs with no coercion and no removal):
 * a wrong type or an unknown field is 400. What values mean is checked by the job service.
 */

const nullable = (type: string) => ({ type: [type, 'null'] });
const strings = { type: 'array', items: { type: 'string' } } as const;

/** Every field a client may write on a device. */
const deviceFields = {
  vendor_id: nullable('integer'),
  ...Object.fromEntries(DEVICE_TEXT_FIELDS.map((field) => [field, nullable('string')])),
  group: { type: 'string' },
  tags: strings,
  health_status: { type: 'string', enum: HEALTH_STATUSES },
  restricted_status: { type: 'string', enum: RESTRICTED_STATUSES },
  ...Object.fromEntries(DEVICE_NUMBER_FIELDS.map((field) => [field, nullable('number')])),
};

const deviceCreate = {
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: { id: { type: 'string' }, ...deviceFields, device_token: { type: 'string' } },
};

/** One device or an array of them; the route wraps a single one into an array before validation. */
export const deviceCreateBody = { type: 'array', items: deviceCreate };

/** `id` may be repeated as it is in the path (a device read, edited and sent back), never changed. */
export const deviceUpdateBody = {
  type: 'object',
  additionalProperties: false,
  properties: { id: { type: 'string' }, ...deviceFields },
};

export const deviceTokenBody = {
  type: 'object',
  additionalProperties: false,
  properties: { device_token: { type: 'string' } },
};

export const jobCreateBody = {
  type: 'object',
  required: ['job_type', 'targets'],
  additionalProperties: false,
  properties: {
    job_type: { type: 'string', enum: JOB_TYPES },
    description: nullable('string'),
    targets: {
      type: 'object',
      additionalProperties: false,
      properties: {
        devices: strings,
        groups: strings,
        tags: strings,
        query: { type: 'string' },
        all: { type: 'boolean' },
      },
    },
    payload: {},
    timeout: { type: 'integer', minimum: 1 },
    offline_timeout: { type: 'integer', minimum: 1 },
  },
};
