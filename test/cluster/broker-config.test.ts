import { rmSync } from 'node:fs';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../dispatch/harness.js';
import { freePort } from '../process.js';
import { newPostgresDatabase } from '../setup/databases.js';
import { addAlice, api, Broker, deviceLogin, fleetjobs, Node, within } from './nodes.js';

/**
 * CONTRACT §8 on a real PostgreSQL and a real Mosquitto 2: `fleetjobs broker-config` sets the
 * broker up (devices that existed before included), nodes keep device logins in sync live through
 * its dynamic-security plugin, /readyz tells whether a node reaches store and broker, and the
 * embedded broker refuses to run beside other nodes.
 */

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const closed = (client: { once(event: 'close', listener: () => void): unknown }) =>
  new Promise<number>((resolve) => {
    const since = Date.now();
    client.once('close', () => resolve(Date.now() - since));
  });

describe('a node on Mosquitto set up by broker-config', () => {
  it('devices log in (created before and after), token changes and deletions close sessions within 1 s; /readyz', async () => {
    const database = await newPostgresDatabase();
    const store = ['--database-url', database];
    await addAlice(store);
    const dir = tempDir();
    dirs.push(dir);
    const port = await freePort();

    // a device created before the broker exists: through a first node on the embedded broker
    const early = await Node.start('early', [...store, '--mqtt-port', String(await freePort())]);
    const created = await api(early.url, 'alice', 'alice-password-1')('POST', '/ws/v1/devices/inventory', {
      id: '00000000-00000000-00000000-0000E001',
    });
    const [before] = (created.body as { list: { id: string; device_token: string }[] }).list;
    if (!before) throw new Error('no device');
    expect(await early.stop()).toBe(0);

    const written = JSON.parse(
      await fleetjobs(['broker-config', '--dir', dir, '--port', String(port), ...store]),
    );
    expect(written.config).toBe(`${dir}/mosquitto.conf`);
    const mqttUrl: string = written.mqtt_url;
    expect(new URL(mqttUrl).port).toBe(String(port));
    const broker = await Broker.start(written.config, mqttUrl);
    const deviceUrl = `mqtt://127.0.0.1:${port}`;
    try {
      const node = await Node.start('one', [...store, '--mqtt-url', mqttUrl]);
      try {
        const call = api(node.url, 'alice', 'alice-password-1');
        expect((await fetch(`${node.url}/readyz`)).status).toBe(200);
        await (await deviceLogin(deviceUrl, before.id, before.device_token)).endAsync();
        await expect(deviceLogin(deviceUrl, before.id, 'not-the-token-at-all')).rejects.toThrow();

        // created on a node: logs in within 1 s
        const made = await call('POST', '/ws/v1/devices/inventory', {
          id: '00000000-00000000-00000000-0000E002',
        });
        const [after] = (made.body as { list: { id: string; device_token: string }[] }).list;
        if (!after) throw new Error('no device');
        const session = await within(1_000, 'new device logs in', () =>
          deviceLogin(deviceUrl, after.id, after.device_token),
        );
        // a device may use only its own topics: of two requests and two statuses, another
        // device's published first, only its own get through
        const service = await mqtt.connectAsync(mqttUrl, { reconnectPeriod: 0 });
        const heard = (client: mqtt.MqttClient) => {
          const topics: string[] = [];
          client.on('message', (topic) => topics.push(topic));
          return topics;
        };
        const deviceHeard = heard(session);
        const serviceHeard = heard(service);
        await session.subscribeAsync('fleetjobs/+/jobs/+/request', { qos: 1 });
        await service.subscribeAsync('fleetjobs/+/jobs/+/status', { qos: 1 });
        for (const id of [before.id, after.id]) {
          await service.publishAsync(`fleetjobs/${id}/jobs/1/request`, '{}', { qos: 1 });
          await session.publishAsync(`fleetjobs/${id}/jobs/1/status`, '{}', { qos: 1 });
        }
        await within(1_000, 'its own request and status through', async () =>
          deviceHeard.length > 0 && serviceHeard.length > 0 ? true : undefined,
        );
        expect(deviceHeard).toEqual([`fleetjobs/${after.id}/jobs/1/request`]);
        expect(serviceHeard).toEqual([`fleetjobs/${after.id}/jobs/1/status`]);
        await service.endAsync();

        // token replaced: the session closes and the old token stops within 1 s
        const sessionClosed = closed(session);
        const replaced = await call<{ device_token: string }>(
          'POST',
          `/ws/v1/devices/inventory/${after.id}/token`,
        );
        expect(replaced.status).toBe(200);
        expect(await sessionClosed).toBeLessThan(1_000);
        await expect(deviceLogin(deviceUrl, after.id, after.device_token)).rejects.toThrow();
        const again = await within(1_000, 'new token logs in', () =>
          deviceLogin(deviceUrl, after.id, replaced.body.device_token),
        );

        // deleted: the session closes within 1 s and the device cannot log in
        const deletedClosed = closed(again);
        expect((await call('DELETE', `/ws/v1/devices/inventory/${after.id}`)).status).toBe(200);
        expect(await deletedClosed).toBeLessThan(1_000);
        await expect(deviceLogin(deviceUrl, after.id, replaced.body.device_token)).rejects.toThrow();

        // the embedded broker refuses to run beside this node
        const refused = await Node.refused('lonely', [...store, '--mqtt-port', String(await freePort())]);
        expect(refused.code).not.toBe(0);
        expect(refused.stderr).toMatch(/other fleetjobs nodes run on this database \(one\).*single node/);

        // the broker gone: not ready, and why
        await broker.stop();
        const notReady = await within(5_000, '/readyz 503', async () => {
          const response = await fetch(`${node.url}/readyz`);
          return response.status === 503 && ((await response.json()) as Record<string, unknown>);
        });
        expect(notReady).toEqual({
          error_status: 503,
          error_message: expect.stringMatching(/MQTT broker .* unreachable/),
        });
      } finally {
        expect(await node.stop()).toBe(0);
      }

      // running it again keeps what is there working: the same service login, the devices' logins
      const rewritten = JSON.parse(
        await fleetjobs(['broker-config', '--dir', dir, '--port', String(port), ...store]),
      );
      expect(rewritten).toEqual(written);
      const restarted = await Broker.start(rewritten.config, rewritten.mqtt_url);
      try {
        await (await deviceLogin(deviceUrl, before.id, before.device_token)).endAsync();
      } finally {
        await restarted.stop();
      }
    } finally {
      await broker.stop();
    }
  }, 120_000);
});
