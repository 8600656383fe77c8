import type { ConnectionStatus } from '../../src/model/device.js';
import type { Millis } from '../../src/model/job.js';
import type { Store } from '../../src/store/store.js';

/** One presence message, stored alone (the service stores them in batches): whether it applied. */
export async function setConnection(
  store: Pick<Store, 'setConnections'>,
  deviceId: string,
  status: ConnectionStatus,
  at: Millis,
  topicId = deviceId,
  replay = false,
): Promise<boolean> {
  const [applied] = await store.setConnections([
    { device_id: deviceId, status, at, topic_id: topicId, replay },
  ]);
  return applied === true;
}
