import { describe, expect, it } from 'vitest';
import { ReadQueue, readKey } from '../../../src/store/sql/read-queue.js';

/** A connection's reads, each answered when the test says. */
function connection() {
  const reads: { message: string; answer(reply: string): void; fail(error: Error): void }[] = [];
  const run = (message: string) =>
    new Promise<string>((resolve, reject) => reads.push({ message, answer: resolve, fail: reject }));
  return { reads, run };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('ReadQueue', () => {
  it('gives out at most its capacity at a time, the others in the order asked for', async () => {
    const { reads, run } = connection();
    const queue = new ReadQueue(2, run);
    const answers = ['a', 'b', 'c', 'd'].map((message) => queue.ask(message));
    expect(reads.map((read) => read.message)).toEqual(['a', 'b']);
    reads[1]?.answer('B');
    await settle();
    expect(reads.map((read) => read.message)).toEqual(['a', 'b', 'c']);
    reads[0]?.answer('A');
    reads[2]?.answer('C');
    await settle();
    reads[3]?.answer('D');
    expect(await Promise.all(answers)).toEqual(['A', 'B', 'C', 'D']);
  });

  it('answers an identical read still waiting with the one it joins, never one already given out', async () => {
    const { reads, run } = connection();
    const queue = new ReadQueue(1, run);
    const given = queue.ask('page', 'same');
    const waiting = queue.ask('page', 'same');
    const joined = queue.ask('page', 'same');
    const other = queue.ask('other', 'other');
    expect(reads).toHaveLength(1);
    reads[0]?.answer('first');
    await settle();
    reads[1]?.answer('second');
    await settle();
    reads[2]?.answer('third');
    expect(await Promise.all([given, waiting, joined, other])).toEqual([
      'first',
      'second',
      'second',
      'third',
    ]);
    expect(reads.map((read) => read.message)).toEqual(['page', 'page', 'other']);
  });

  it('answers the reads that joined one per turn of the event loop, other work running between them', async () => {
    const { reads, run } = connection();
    const queue = new ReadQueue(1, run);
    const busy = queue.ask('busy');
    const log: string[] = [];
    const joined = [1, 2, 3].map((n) =>
      queue.ask('page', 'same').then((reply) => log.push(`answer ${n}: ${reply}`)),
    );
    reads[0]?.answer('done');
    await busy;
    expect(reads.map((read) => read.message)).toEqual(['busy', 'page']);
    reads[1]?.answer('P');
    for (let turn = 1; turn <= 3; turn++) {
      await settle();
      log.push(`turn ${turn}`);
    }
    await Promise.all(joined);
    expect(log).toEqual(['answer 1: P', 'turn 1', 'answer 2: P', 'turn 2', 'answer 3: P', 'turn 3']);
  });

  it('answers every joined read with the error of its read, and goes on with the next', async () => {
    const { reads, run } = connection();
    const queue = new ReadQueue(1, run);
    const busy = queue.ask('busy');
    const failing = Promise.allSettled([queue.ask('bad', 'bad'), queue.ask('bad', 'bad')]);
    const next = queue.ask('next');
    reads[0]?.answer('done');
    await settle();
    reads[1]?.fail(new Error('no such column'));
    await settle();
    reads[2]?.answer('fine');
    expect(await busy).toBe('done');
    expect((await failing).map((result) => result.status === 'rejected' && String(result.reason))).toEqual([
      'Error: no such column',
      'Error: no such column',
    ]);
    expect(await next).toBe('fine');
  });

  it('answers a read whose connection throws at once with that error', async () => {
    const queue = new ReadQueue<string, string>(1, () => {
      throw new Error('closed');
    });
    await expect(queue.ask('x')).rejects.toThrow('closed');
    await expect(queue.ask('y')).rejects.toThrow('closed');
  });

  it('answers the reads waiting when it closes, and every later one', async () => {
    const { reads, run } = connection();
    const queue = new ReadQueue(1, run);
    const given = queue.ask('given');
    const waiting = queue.ask('waiting');
    queue.close(new Error('the store is closed'));
    await expect(waiting).rejects.toThrow('the store is closed');
    await expect(queue.ask('later')).rejects.toThrow('the store is closed');
    reads[0]?.answer('read');
    expect(await given).toBe('read');
  });
});

describe('readKey', () => {
  it('tells reads apart by statement, parameters (text from numbers) and encoding', () => {
    const key = readKey('SELECT ?', [1], { limit: 10 });
    expect(readKey('SELECT ?', [1], { limit: 10 })).toBe(key);
    expect(readKey('SELECT ?', ['1'], { limit: 10 })).not.toBe(key);
    expect(readKey('SELECT ?', [2], { limit: 10 })).not.toBe(key);
    expect(readKey('SELECT ?', [1], { limit: 11 })).not.toBe(key);
    expect(readKey('SELECT  ?', [1], { limit: 10 })).not.toBe(key);
  });

  it('has no key for a read with a parameter that is not text or a number', () => {
    expect(readKey('SELECT ?', [Buffer.from('x')], null)).toBeUndefined();
    expect(readKey('SELECT ?', [1n], null)).toBeUndefined();
  });
});
