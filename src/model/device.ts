import type { Millis } from './job.js';

export const CONNECTION_STATUSES = ['connected', 'disconnected'] as const;
export type ConnectionStatus = (typeof CONNECTION_STATUSES)[number];

export const HEALTH_STATUSES = ['normal', 'warning', 'error', 'unknown'] as const;
export type HealthStatus = (typeof HEALTH_STATUSES)[number];

export const RESTRICTED_STATUSES = ['unrestricted', 'restricted', 'disabled', 'untrusted'] as const;
export type RestrictedStatus = (typeof RESTRICTED_STATUSES)[number];

/** Free-text device fields. */
export const DEVICE_TEXT_FIELDS = [
  'name',
  'type',
  'firmware_version',
  'serial_number',
  'mac',
  'ip',
  'public_ip',
  'description',
  'notes',
  'contact',
  'location',
  'carrier',
  'carrier2',
  'network',
  'network2',
] as const;
export type DeviceTextField = (typeof DEVICE_TEXT_FIELDS)[number];

export const DEVICE_NUMBER_FIELDS = [
  'signal_percent',
  'signal_percent2',
  'signal_quality',
  'signal_quality2',
  'signal_strength',
  'signal_strength2',
] as const;
export type DeviceNumberField = (typeof DEVICE_NUMBER_FIELDS)[number];

export const DEVICE_TIMESTAMP_FIELDS = ['last_connect', 'last_disconnect', 'last_update'] as const;

/** Every device field, in the order lists, XML and CSV show them. */
export const DEVICE_FIELDS = [
  'id',
  'customer_id',
  'vendor_id',
  ...DEVICE_TEXT_FIELDS,
  'group',
  'tags',
  'connection_status',
  'health_status',
  'restricted_status',
  ...DEVICE_NUMBER_FIELDS,
  ...DEVICE_TIMESTAMP_FIELDS,
] as const;
export type DeviceField = (typeof DEVICE_FIELDS)[number];

/** Fields the service sets; clients never write them. */
export const DEVICE_SERVICE_FIELDS = [
  'customer_id',
  'connection_status',
  'last_connect',
  'last_disconnect',
  'last_update',
] as const;

/** Fields a device may report about itself on `fleetjobs/<id>/state`. */
export const DEVICE_REPORTED_FIELDS = [
  'type',
  'vendor_id',
  'firmware_version',
  'serial_number',
  'mac',
  'ip',
  'public_ip',
  'health_status',
  'carrier',
  'carrier2',
  'network',
  'network2',
  ...DEVICE_NUMBER_FIELDS,
] as const;

export type DeviceText = { [K in DeviceTextField]: string | null };
export type DeviceNumbers = { [K in DeviceNumberField]: number | null };

export interface Device extends DeviceText, DeviceNumbers {
  id: string;
  customer_id: number;
  vendor_id: number | null;
  /** Normalized path: leading `/`, no trailing `/`; `''` for no group. */
  group: string;
  tags: string[];
  connection_status: ConnectionStatus;
  health_status: HealthStatus;
  restricted_status: RestrictedStatus;
  last_connect: Millis | null;
  last_disconnect: Millis | null;
  last_update: Millis | null;
}

/** What a client may write when creating or updating a device. */
export type DeviceInput = Partial<
  Omit<
    Device,
    'id' | 'customer_id' | 'connection_status' | 'last_connect' | 'last_disconnect' | 'last_update'
  >
>;

/** `00000000-00000000-0004F3FF-FF0123AB`: four groups of 8 hex digits. */
export const DEVICE_ID_PATTERN = /^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{8}-[0-9A-Fa-f]{8}-[0-9A-Fa-f]{8}$/;

export const normalizeDeviceId = (id: string): string => id.toUpperCase();

/** `NorthWest/Seattle/` → `/NorthWest/Seattle`; `''` or `/` → `''` (no group). */
export const normalizeGroup = (group: string): string => {
  const trimmed = group.replace(/\/+$/, '');
  if (trimmed === '') return '';
  return trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
};

/** Folds ASCII letters only, the same way SQLite's and PostgreSQL's `lower()` do under the C collation. */
export const foldAscii = (text: string): string => text.replace(/[A-Z]/g, (c) => c.toLowerCase());

/** A group of the inventory: a path that a device's group has or lies under. */
export interface DeviceGroup {
  path: string;
  /** The last segment of the path. */
  name: string;
  /** The path one level up; null for a top-level group. */
  parent: string | null;
  /** Devices in the group and its subgroups. */
  device_count: number;
}

export const GROUP_FIELDS = ['path', 'name', 'parent', 'device_count'] as const;
