import { SHARE_GROUP, TOPIC_ROOT } from './topics.js';

/**
 * Device logins on Mosquitto 2's dynamic-security plugin (CONTRACT §8): one client per device
 * (username = its id) with a role of its own that allows only `fleetjobs/<its id>/#`, and the
 * service's client, which may use every device topic and control the plugin. `fleetjobs
 * broker-config` writes them into the plugin's file; nodes change them live over
 * `$CONTROL/dynamic-security/v1`, and the plugin closes the session of a client it changes.
 */

export const CONTROL_TOPIC = '$CONTROL/dynamic-security/v1';
export const SERVICE_USERNAME = 'fleetjobs-service';
const SERVICE_ROLE = 'fleetjobs-service';

interface Acl {
  acltype: 'publishClientSend' | 'publishClientReceive' | 'subscribePattern' | 'unsubscribePattern';
  topic: string;
  allow: boolean;
  priority?: number;
}

export interface DynsecRole {
  rolename: string;
  acls: Acl[];
}

export interface DynsecClient {
  username: string;
  password?: string;
  salt?: string;
  iterations?: number;
  roles: { rolename: string }[];
  [other: string]: unknown;
}

/** The plugin's file, as far as fleetjobs writes it. */
export interface DynsecFile {
  defaultACLAccess: Record<string, boolean>;
  clients: DynsecClient[];
  groups: unknown[];
  roles: DynsecRole[];
  [other: string]: unknown;
}

const allow = (topic: string): Acl[] => [
  { acltype: 'publishClientSend', topic, allow: true },
  { acltype: 'publishClientReceive', topic, allow: true },
  { acltype: 'subscribePattern', topic, allow: true },
  { acltype: 'unsubscribePattern', topic, allow: true },
];

export const deviceRoleName = (deviceId: string): string => `fleetjobs-device-${deviceId}`;

export const deviceRole = (deviceId: string): DynsecRole => ({
  rolename: deviceRoleName(deviceId),
  acls: allow(`${TOPIC_ROOT}/${deviceId}/#`),
});

export const serviceRole = (): DynsecRole => ({
  rolename: SERVICE_ROLE,
  acls: [
    ...allow(`${TOPIC_ROOT}/#`),
    ...allow(`$share/${SHARE_GROUP}/${TOPIC_ROOT}/#`),
    ...allow('$CONTROL/dynamic-security/#'),
  ],
});

/** A stored device-token hash (`$7$iterations$salt$hash`, Mosquitto's PBKDF2-SHA512) as a client. */
export function deviceClient(deviceId: string, tokenHash: string): DynsecClient | null {
  const [, scheme, iterations, salt, hash] = tokenHash.split('$');
  if (scheme !== '7' || !iterations || !salt || !hash) return null;
  return {
    username: deviceId,
    password: hash,
    salt,
    iterations: Number(iterations),
    roles: [{ rolename: deviceRoleName(deviceId) }],
  };
}

/**
 * The commands that make the broker's logins follow a device's: with a token (new, or replaced),
 * its role and client are created if missing and the password set, which closes a session opened
 * with another one; without (deleted), client and role go, and with them its session.
 */
export function loginCommands(deviceId: string, token: string | null): object[] {
  const role = deviceRole(deviceId);
  if (token === null) {
    return [
      { command: 'deleteClient', username: deviceId },
      { command: 'deleteRole', rolename: role.rolename },
    ];
  }
  return [
    { command: 'createRole', ...role },
    { command: 'createClient', username: deviceId, password: token, roles: [{ rolename: role.rolename }] },
    { command: 'setClientPassword', username: deviceId, password: token },
  ];
}
