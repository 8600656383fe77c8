import { DEVICE_NOT_CONNECTED, type JobStatus, type JobTarget, type JobType } from '../../model/job.js';
import { xmlCharacters } from '../formats/xml.js';
import type { ReplyMode, SciOperation } from './request.js';
import { attribute, buildObject, parseFragment, type XmlObject } from './xml.js';

/**
 * SCI replies (CONTRACT §11) as one object model: XML is built from it, and `Accept:
 * application/json` gets the same object as JSON (`{"sci_reply": {"@version": "1.0", …}}`).
 */

export const SCI_ERRORS = {
  deviceNotFound: { id: 303, desc: 'Invalid target. Device not found.' },
  notConnected: { id: 2001, desc: DEVICE_NOT_CONNECTED },
  failed: { id: 2002 },
  timedOut: { id: 2003, desc: 'Timed out' },
} as const;

export const sciReply = (content: XmlObject): XmlObject => ({
  sci_reply: { [attribute('version')]: '1.0', ...content },
});

/** A request SCI refuses: `<sci_reply version="1.0"><error><desc>…</desc></error></sci_reply>`. */
export const sciErrorReply = (desc: string): XmlObject => sciReply({ error: { desc: xmlCharacters(desc) } });

const deviceError = (deviceId: string, id: number, desc: string): XmlObject => ({
  [attribute('id')]: deviceId,
  error: { [attribute('id')]: String(id), desc: xmlCharacters(desc) },
});

/** What a device answered (`"response": {"sci": "<fragment>"}`), as the content of its `<device>`. */
function deviceAnswer(response: unknown): XmlObject {
  if (response === null || response === undefined) return {};
  const sci = typeof response === 'object' ? (response as { sci?: unknown }).sci : undefined;
  const text = typeof sci === 'string' ? sci : JSON.stringify(response);
  if (text.trim() === '') return {};
  const fragment = typeof sci === 'string' ? parseFragment(sci) : undefined;
  if (fragment === undefined || typeof fragment !== 'object') return { '#text': xmlCharacters(text) };
  return fragment;
}

export interface DeviceReply {
  element: XmlObject;
  error: boolean;
}

/** One target's part of a reply; a target still pending when the wait ended timed out for the caller. */
export function targetReply(
  target: Pick<JobTarget, 'device_id' | 'status' | 'message' | 'response'>,
): DeviceReply {
  const id = target.device_id;
  switch (target.status) {
    case 'successful':
      return { element: { [attribute('id')]: id, ...deviceAnswer(target.response) }, error: false };
    case 'queued':
    case 'in_progress':
    case 'timed_out':
      return { element: deviceError(id, SCI_ERRORS.timedOut.id, SCI_ERRORS.timedOut.desc), error: true };
    case 'failed':
      if (target.message === DEVICE_NOT_CONNECTED) {
        return {
          element: deviceError(id, SCI_ERRORS.notConnected.id, SCI_ERRORS.notConnected.desc),
          error: true,
        };
      }
      return { element: deviceError(id, SCI_ERRORS.failed.id, target.message ?? 'failed'), error: true };
    case 'canceled':
      return { element: deviceError(id, SCI_ERRORS.failed.id, target.message ?? 'canceled'), error: true };
  }
}

/** A device id of the request that is no device of the account. */
export const unknownDeviceReply = (deviceId: string): DeviceReply => ({
  element: deviceError(deviceId, SCI_ERRORS.deviceNotFound.id, SCI_ERRORS.deviceNotFound.desc),
  error: true,
});

/** `<OPERATION><device id="…">…</device>…</OPERATION>`, with the replies `reply` asks for. */
export function operationReply(operation: JobType, devices: DeviceReply[], mode: ReplyMode): XmlObject {
  const shown = mode === 'all' ? devices : mode === 'errors' ? devices.filter((device) => device.error) : [];
  return { [operation]: shown.length === 0 ? {} : { device: shown.map((device) => device.element) } };
}

/** The reply of an asynchronous request: where its job is. */
export const jobIdReply = (operation: SciOperation, jobId: number): XmlObject =>
  sciReply({ [operation]: { jobId: String(jobId) } });

/** `GET /ws/sci/{id}`: `in_progress` while the job runs, then its status and every device's reply. */
export function jobStatusReply(status: JobStatus, operation: () => XmlObject): XmlObject {
  if (status === 'new' || status === 'in_progress') return sciReply({ status: 'in_progress' });
  return sciReply({ status, ...operation() });
}

/** A reply as XML, or as JSON for `json`. */
export function renderSci(reply: XmlObject, json: boolean): { contentType: string; body: string } {
  return json
    ? { contentType: 'application/json; charset=utf-8', body: JSON.stringify(reply) }
    : { contentType: 'application/xml; charset=utf-8', body: buildObject(reply) };
}
