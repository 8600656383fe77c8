import { setTimeout as sleep } from 'node:timers/promises';
import mqtt, { type MqttClient } from 'mqtt';
import { simulatedSciReply } from './sci-replies.js';
import { presenceTopic } from './topics.js';

/** How long a leaving device waits for its `offline` to be acknowledged. */
const GOODBYE_WAIT_MS = 2_000;

/** A simulated device's identity: its id and the token it logs in with. */
export interface SimulatedIdentity {
  id: string;
  token: string;
}

export interface SimulatorOptions {
  mqttUrl: string;
  devices: SimulatedIdentity[];
  /** Fraction (0–1) of requests answered `failed`. */
  failRate: number;
  /** Milliseconds a device works on a request before it answers. */
  latency: number;
  /** Connections opened at the same time while connecting. */
  connectConcurrency?: number;
}

export interface SimulatorCounts {
  devices: number;
  connected: number;
  requests: number;
  successful: number;
  failed: number;
  canceled: number;
}

type Outcome = { status: 'successful' | 'failed' | 'canceled'; message: string; response?: unknown };

/** One device of the simulator: it works on each job once, answers duplicates with its result. */
class SimulatedDevice {
  readonly #jobs = new Map<number, { timer: NodeJS.Timeout | null; outcome: Outcome | null }>();
  client: MqttClient | null = null;
  #up = false;
  readonly #started = Date.now();

  constructor(
    readonly identity: SimulatedIdentity,
    readonly simulator: Simulator,
  ) {}

  connect(url: string): Promise<void> {
    const { id, token } = this.identity;
    return new Promise((resolve, reject) => {
      const client = mqtt.connect(url, {
        clientId: id,
        username: id,
        password: token,
        protocolVersion: 4,
        clean: true,
        keepalive: 30,
        reconnectPeriod: 2_000,
        connectTimeout: 30_000,
        will: { topic: presenceTopic(id), payload: Buffer.from('offline'), qos: 1, retain: true },
      });
      this.client = client;
      let first = true;
      client.on('connect', () => {
        this.#up = true;
        this.simulator.counts.connected++;
        client.subscribe(`fleetjobs/${id}/jobs/+/+`, { qos: 1 }, () => {
          client.publish(`fleetjobs/${id}/state`, JSON.stringify(this.simulator.stateOf(id)), { qos: 1 });
          client.publish(presenceTopic(id), 'online', { qos: 1, retain: true });
          if (first) {
            first = false;
            resolve();
          }
        });
      });
      client.on('close', () => {
        if (!this.#up) return;
        this.#up = false;
        this.simulator.counts.connected--;
      });
      client.on('error', (error) => {
        if (first) {
          first = false;
          client.end(true);
          reject(new Error(`device ${id}: ${error.message}`));
        }
      });
      client.on('message', (topic, payload) => this.#onMessage(topic, payload));
    });
  }

  #onMessage(topic: string, payload: Buffer): void {
    const [, , , jobText, kind] = topic.split('/');
    const jobId = Number(jobText);
    let body: { force?: unknown; job_type?: unknown; payload?: { sci?: unknown } | null };
    try {
      body = JSON.parse(payload.toString('utf8'));
    } catch {
      return;
    }
    if (kind === 'request') this.#onRequest(jobId, this.#answerTo(body));
    else if (kind === 'cancel') this.#onCancel(jobId, body.force === true);
  }

  /** What the device answers when it succeeds: an SCI reply to an SCI request, else a token answer. */
  #answerTo(request: { job_type?: unknown; payload?: { sci?: unknown } | null }): unknown {
    const sci = request.payload?.sci;
    if (typeof sci !== 'string') return { simulated: true };
    const state = this.simulator.stateOf(this.identity.id);
    const facts = {
      id: this.identity.id,
      ip: String(state.ip),
      firmware_version: String(state.firmware_version),
      uptime: Math.round((Date.now() - this.#started) / 1000),
    };
    return { sci: simulatedSciReply(String(request.job_type), sci, facts) };
  }

  #onRequest(jobId: number, response: unknown): void {
    const known = this.#jobs.get(jobId);
    if (known) {
      // A request sent again: the service may have missed the answer.
      if (known.outcome) this.#report(jobId, known.outcome);
      return;
    }
    this.simulator.counts.requests++;
    const job: { timer: NodeJS.Timeout | null; outcome: Outcome | null } = { timer: null, outcome: null };
    this.#jobs.set(jobId, job);
    const finish = () => {
      job.timer = null;
      const failed = Math.random() < this.simulator.options.failRate;
      this.#finish(
        jobId,
        failed
          ? { status: 'failed', message: 'simulated failure' }
          : { status: 'successful', message: 'done', response },
      );
    };
    if (this.simulator.options.latency > 0) {
      this.#report(jobId, { status: 'in_progress', progress: 0, message: 'working' });
      job.timer = setTimeout(finish, this.simulator.options.latency);
    } else {
      finish();
    }
  }

  #onCancel(jobId: number, force: boolean): void {
    const job = this.#jobs.get(jobId);
    if (job?.outcome) return;
    if (job?.timer) clearTimeout(job.timer);
    if (!job) this.#jobs.set(jobId, { timer: null, outcome: null });
    this.#finish(jobId, { status: 'canceled', message: force ? 'stopped (forced)' : 'stopped' });
  }

  #finish(jobId: number, outcome: Outcome): void {
    const job = this.#jobs.get(jobId);
    if (job) job.outcome = outcome;
    this.simulator.counts[outcome.status]++;
    this.#report(jobId, outcome);
  }

  #report(jobId: number, body: object): void {
    this.client?.publish(`fleetjobs/${this.identity.id}/jobs/${jobId}/status`, JSON.stringify(body), {
      qos: 1,
    });
  }

  /** Says `offline` (waiting a moment for the broker to take it), then disconnects. */
  async leave(): Promise<void> {
    const client = this.client;
    if (!client) return;
    for (const job of this.#jobs.values()) if (job.timer) clearTimeout(job.timer);
    if (client.connected) {
      const goodbye = client.publishAsync(presenceTopic(this.identity.id), 'offline', {
        qos: 1,
        retain: true,
      });
      await Promise.race([goodbye.catch(() => undefined), sleep(GOODBYE_WAIT_MS)]);
    }
    await new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
  }
}

/**
 * Devices that speak CONTRACT §7 (the demo beside `npm start`, and the load of the benchmarks):
 * each connects with its token, reports its state, announces itself and answers every request
 * after `latency`, failing a `failRate` fraction, and stops what is canceled.
 */
export class Simulator {
  readonly counts: SimulatorCounts;
  readonly #devices: SimulatedDevice[];

  constructor(readonly options: SimulatorOptions) {
    this.#devices = options.devices.map((identity) => new SimulatedDevice(identity, this));
    this.counts = {
      devices: this.#devices.length,
      connected: 0,
      requests: 0,
      successful: 0,
      failed: 0,
      canceled: 0,
    };
  }

  stateOf(id: string): Record<string, unknown> {
    const seed = Number.parseInt(id.slice(-4), 16);
    return {
      type: 'simulated device',
      firmware_version: '1.0.0',
      health_status: 'normal',
      signal_percent: seed % 101,
      ip: `10.${(seed >> 8) & 255}.${seed & 255}.1`,
    };
  }

  /** Connects every device (a few at a time); rejects if one is refused. */
  async start(): Promise<void> {
    const concurrency = this.options.connectConcurrency ?? 200;
    let next = 0;
    const worker = async () => {
      while (next < this.#devices.length) {
        const device = this.#devices[next++];
        await device?.connect(this.options.mqttUrl);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, this.#devices.length) }, worker));
  }

  /** Drops the connection of `device` without a goodbye, as a device losing power would (it reconnects). */
  drop(index: number): void {
    this.#devices[index]?.client?.stream.destroy();
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.#devices.map((device) => device.leave()));
  }
}
