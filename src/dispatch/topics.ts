import { DEVICE_ID_PATTERN } from '../model/device.js';

/**
 * The topics of CONTRACT §7, all under `fleetjobs/<device id>/`. The id in a topic is written as
 * the device connects with it; ids compare upper-cased, as they are stored.
 */

export const TOPIC_ROOT = 'fleetjobs';

export const presenceTopic = (topicId: string): string => `${TOPIC_ROOT}/${topicId}/presence`;
export const requestTopic = (topicId: string, jobId: number): string =>
  `${TOPIC_ROOT}/${topicId}/jobs/${jobId}/request`;
export const cancelTopic = (topicId: string, jobId: number): string =>
  `${TOPIC_ROOT}/${topicId}/jobs/${jobId}/cancel`;

/** The shared-subscription group of every node: the broker hands each device message to one of them. */
export const SHARE_GROUP = 'fleetjobs';

/** Every device's presence. */
export const PRESENCE_FILTER = `${TOPIC_ROOT}/+/presence`;

/** What the service subscribes to (with an external broker; the embedded one sees every publish). */
export const SERVICE_SUBSCRIPTIONS = [
  PRESENCE_FILTER,
  `${TOPIC_ROOT}/+/state`,
  `${TOPIC_ROOT}/+/jobs/+/status`,
];

/** A topic a device publishes on. */
export type DeviceTopic =
  | { kind: 'presence'; deviceId: string; topicId: string }
  | { kind: 'state'; deviceId: string; topicId: string }
  | { kind: 'status'; deviceId: string; topicId: string; jobId: number };

const JOB_ID = /^[1-9][0-9]{0,15}$/;

/** The device topic `topic` names, or null when it is none of the topics a device may publish on. */
export function parseDeviceTopic(topic: string): DeviceTopic | null {
  const levels = topic.split('/');
  const [root, topicId, kind, jobId, leaf] = levels;
  if (root !== TOPIC_ROOT || topicId === undefined || !DEVICE_ID_PATTERN.test(topicId)) return null;
  const deviceId = topicId.toUpperCase();
  if (levels.length === 3 && (kind === 'presence' || kind === 'state')) return { kind, deviceId, topicId };
  if (
    levels.length === 5 &&
    kind === 'jobs' &&
    leaf === 'status' &&
    jobId !== undefined &&
    JOB_ID.test(jobId)
  ) {
    return { kind: 'status', deviceId, topicId, jobId: Number(jobId) };
  }
  return null;
}

/**
 * Whether the device may subscribe to `filter`: only filters under its own `fleetjobs/<id>/`
 * (the id written out, no wildcard there).
 */
export function maySubscribe(deviceId: string, filter: string): boolean {
  const [root, topicId, ...rest] = filter.split('/');
  return (
    root === TOPIC_ROOT && topicId !== undefined && topicId.toUpperCase() === deviceId && rest.length > 0
  );
}
