import { SHARE_GROUP, TOPIC_ROOT } from './topics.js';

/**
 * Device logins on Mosquitto 2's dynamic-security plugin (CONTRACT §8): one client per device
 * (username = its id), all of them in one role without ACLs, and the service's client, which may
 * use every device topic and control the plugin. A device's own topics come from one line of the
 * broker's ACL file (DEVICE_ACL): the plugin leaves a client without a matching ACL of its own to
 * it. Mosquitto 2.0's plugin has no per-client patterns, and it rewrites its whole file after
 * every change it applies: a role per device doubled that file and added a change per device.
 * `fleetjobs broker-config` writes them into the plugin's file; nodes change them live over
 * `$CONTROL/dynamic-security/v1`, and the plugin closes the session of a client it changes.
 */

export const CONTROL_TOPIC = '$CONTROL/dynamic-security/v1';
export const SERVICE_USERNAME = 'fleetjobs-service';
const SERVICE_ROLE = 'fleetjobs-service';
/** The role of every device's client: it marks them, the ACL file grants their topics. */
export const DEVICE_ROLE = 'fleetjobs-device';
/** The broker's ACL file: a device (username = its id) may use only its own topics. */
export const DEVICE_ACL = `pattern readwrite ${TOPIC_ROOT}/%u/#\n`;

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

/** A device's client: in DEVICE_ROLE, or (as written before DEVICE_ROLE) in a role of its own. */
export const isDeviceClient = (client: DynsecClient): boolean =>
  client.roles.some(({ rolename }) => rolename === DEVICE_ROLE || rolename.startsWith(`${DEVICE_ROLE}-`));

export const deviceRole = (): DynsecRole => ({ rolename: DEVICE_ROLE, acls: [] });

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
    roles: [{ rolename: DEVICE_ROLE }],
  };
}

/**
 * The commands that make the broker's logins follow a device's. With a token (new, or replaced):
 * the password is set, which closes a session opened with another one, or, for a client not there
 * yet, the client is created; one of the two fails, so the plugin writes its file once. Without
 * (deleted): the client goes, and with it its session.
 */
export function loginCommands(deviceId: string, token: string | null): object[] {
  if (token === null) return [{ command: 'deleteClient', username: deviceId }];
  return [
    { command: 'setClientPassword', username: deviceId, password: token },
    { command: 'createClient', username: deviceId, password: token, roles: [{ rolename: DEVICE_ROLE }] },
  ];
}
