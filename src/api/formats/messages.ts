import { isoTime } from '../../model/csv.js';
import type { StoredEvent } from '../../model/event.js';
import { deviceJson, jobJson, TARGETS, toJson } from '../resources.js';
import { cellText } from './cells.js';
import { xmlText } from './xml.js';

/**
 * An event as monitors, the history and the live stream show it (CONTRACT §10): a Msg object
 * whose `jobs`, `job_targets` or `devices` member is the object as lists show it.
 */
export function messageJson(event: StoredEvent): Record<string, unknown> {
  const head = {
    topic: `${event.customer_id}/${event.topic}/${event.object_key}`,
    group: '*',
    operation: event.operation,
    timestamp: isoTime(event.time),
    uuid: event.uuid,
  };
  switch (event.topic) {
    case 'jobs':
      return { ...head, jobs: jobJson(event.data) };
    case 'job_targets':
      return { ...head, job_targets: toJson(TARGETS, TARGETS.fields, event.data) };
    case 'devices':
      return { ...head, devices: deviceJson(event.data) };
  }
}

/** The monitor body in JSON: `{"Document": {"Msg": [...]}}`. */
export const documentJson = (events: readonly StoredEvent[]): string =>
  JSON.stringify({ Document: { Msg: events.map(messageJson) } });

const element = (name: string, text: string): string => `<${name}>${xmlText(text)}</${name}>`;
const NO_TIMESTAMPS = { timestampFields: new Set<string>() };

/** The monitor body in XML: `<Document><Msg>…</Msg></Document>`, each field a child element. */
export function documentXml(events: readonly StoredEvent[]): string {
  const parts = ['<?xml version="1.0" encoding="UTF-8"?><Document>'];
  for (const event of events) {
    const message = messageJson(event);
    parts.push('<Msg>');
    for (const name of ['topic', 'group', 'operation', 'timestamp', 'uuid']) {
      parts.push(element(name, String(message[name])));
    }
    const object = message[event.topic] as Record<string, unknown>;
    parts.push(`<${event.topic}>`);
    // Timestamps are ISO text already; lists and objects become compact JSON.
    for (const [field, value] of Object.entries(object)) {
      parts.push(element(field, cellText(NO_TIMESTAMPS, field, value)));
    }
    parts.push(`</${event.topic}>`, '</Msg>');
  }
  parts.push('</Document>');
  return parts.join('');
}
