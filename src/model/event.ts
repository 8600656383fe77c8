import type { Device } from './device.js';
import type { Job, JobTarget, Millis } from './job.js';

/** The kinds of object an event describes, as monitors and the live stream name them (§10). */
export const EVENT_TOPICS = ['jobs', 'job_targets', 'devices'] as const;
export type EventTopic = (typeof EVENT_TOPICS)[number];

export const EVENT_OPERATIONS = ['INSERTION', 'UPDATE', 'DELETION'] as const;
export type EventOperation = (typeof EVENT_OPERATIONS)[number];

/** The object an event carries, as it was right after the change. */
export type EventObject<T extends EventTopic> = T extends 'jobs'
  ? Job
  : T extends 'job_targets'
    ? JobTarget
    : Device;

/** One change of one object, as the store recorded it (the outbox). `id` orders events in commit order. */
export type StoredEvent = {
  [T in EventTopic]: {
    id: number;
    uuid: string;
    customer_id: number;
    topic: T;
    /** `<job id>`, `<job id>/<device id>` or `<device id>`: what follows the topic in the Msg topic. */
    object_key: string;
    operation: EventOperation;
    time: Millis;
    data: EventObject<T>;
  };
}[EventTopic];
