import { DEVICE_ID_PATTERN, normalizeDeviceId, normalizeGroup } from '../../model/device.js';
import { badRequest } from '../../model/error.js';
import type { JobType } from '../../model/job.js';
import { attributesOf, buildOrdered, childElements, childrenOf, elementName, parseDocument } from './xml.js';

/** The SCI operations, each creating a job of the same type (CONTRACT §11). */
export const SCI_OPERATIONS = [
  'send_message',
  'reboot',
  'update_firmware',
  'data_service',
  'file_system',
  'disconnect',
] as const satisfies readonly JobType[];
export type SciOperation = (typeof SCI_OPERATIONS)[number];

/** Which device replies a synchronous answer shows. */
export type ReplyMode = 'all' | 'errors' | 'none';

export const DEFAULT_SYNC_TIMEOUT_SECONDS = 60;
export const MAX_SYNC_TIMEOUT_SECONDS = 300;

export interface SciTargets {
  /** Well-formed device ids, upper-case; whether they exist is the store's to say. */
  devices: string[];
  /** Ids that are no device id at all (they answer 303 like unknown ones). */
  malformed: string[];
  tags: string[];
  groups: string[];
  all: boolean;
}

export interface SciRequest {
  operation: SciOperation;
  /** Every attribute of the operation element, as text (sent to the devices). */
  attributes: Record<string, string>;
  synchronous: boolean;
  syncTimeoutSeconds: number;
  allowOffline: boolean;
  reply: ReplyMode;
  targets: SciTargets;
  /** The operation element's inner XML without `<targets>`. */
  payload: string;
}

function flag(attributes: Record<string, string>, name: string, fallback: boolean): boolean {
  const value = attributes[name];
  if (value === undefined) return fallback;
  const lowered = value.trim().toLowerCase();
  if (lowered === 'true') return true;
  if (lowered === 'false') return false;
  throw badRequest(`${name}="${value}" must be true or false`);
}

function syncTimeout(value: string | undefined): number {
  if (value === undefined) return DEFAULT_SYNC_TIMEOUT_SECONDS;
  const trimmed = value.trim();
  if (!/^\d+$/.test(trimmed) || Number(trimmed) === 0) {
    throw badRequest(`syncTimeout="${value}" must be a whole number of seconds from 1`);
  }
  return Math.min(Number(trimmed), MAX_SYNC_TIMEOUT_SECONDS);
}

function replyMode(value: string | undefined): ReplyMode {
  const mode = (value ?? 'all').trim().toLowerCase();
  if (mode === 'all' || mode === 'errors' || mode === 'none') return mode;
  throw badRequest(`reply="${value}" must be all, errors or none`);
}

function readTargets(targets: ReturnType<typeof childElements>): SciTargets {
  const found: SciTargets = { devices: [], malformed: [], tags: [], groups: [], all: false };
  for (const target of targets) {
    const attributes = attributesOf(target);
    const name = elementName(target);
    if (name === 'device' && attributes.id !== undefined) {
      const id = attributes.id.trim();
      if (id.toLowerCase() === 'all') found.all = true;
      else if (DEVICE_ID_PATTERN.test(id)) found.devices.push(normalizeDeviceId(id));
      else found.malformed.push(id);
    } else if (name === 'device' && attributes.tag !== undefined && attributes.tag.trim() !== '') {
      found.tags.push(attributes.tag.trim());
    } else if (
      name === 'group' &&
      attributes.path !== undefined &&
      normalizeGroup(attributes.path.trim()) !== ''
    ) {
      found.groups.push(normalizeGroup(attributes.path.trim()));
    }
  }
  const none = found.devices.length + found.malformed.length + found.tags.length + found.groups.length === 0;
  if (none && !found.all) {
    throw badRequest(
      'No valid target: <targets> must hold <device id="…"/>, <device id="all"/>, <device tag="…"/> or <group path="…"/>',
    );
  }
  return {
    ...found,
    devices: [...new Set(found.devices)],
    tags: [...new Set(found.tags)],
    groups: [...new Set(found.groups)],
  };
}

/** Reads an SCI request (CONTRACT §11); what is wrong with it is a 400 that says what. */
export function parseSciRequest(text: string): SciRequest {
  if (text.trim() === '') throw badRequest('No sci_request: the body is empty');
  const root = parseDocument(text).find((node) => {
    const name = elementName(node);
    return name !== undefined && !name.startsWith('?');
  });
  if (root === undefined || elementName(root) !== 'sci_request') {
    throw badRequest(`No sci_request: the document's root element is <${root ? elementName(root) : ''}>`);
  }
  const operations = childElements(root);
  const [element, ...more] = operations;
  if (element === undefined) throw badRequest('No operation in sci_request');
  if (more.length > 0) throw badRequest('One operation per sci_request');
  const name = elementName(element) ?? '';
  const operation = SCI_OPERATIONS.find((candidate) => candidate === name);
  if (operation === undefined) {
    throw badRequest(`Unknown operation <${name}>: expected one of ${SCI_OPERATIONS.join(', ')}`);
  }
  const attributes = attributesOf(element);
  const children = childrenOf(element);
  const targetElements = children.filter((child) => elementName(child) === 'targets');
  if (targetElements.length === 0) throw badRequest('No valid target: the operation has no <targets>');
  return {
    operation,
    attributes,
    synchronous: flag(attributes, 'synchronous', true),
    syncTimeoutSeconds: syncTimeout(attributes.syncTimeout),
    allowOffline: flag(attributes, 'allowOffline', false),
    reply: replyMode(attributes.reply),
    targets: readTargets(targetElements.flatMap(childElements)),
    payload: buildOrdered(children.filter((child) => elementName(child) !== 'targets')).trim(),
  };
}
