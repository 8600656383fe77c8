import { parse as parseCsv } from 'csv-parse/sync';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Caller, expectError, Harness } from './harness.js';

const q = (text: string) => encodeURIComponent(text);

describe('GET /ws/v1 and the group inventory', () => {
  let h: Harness;
  let bob: Caller;
  let mallory: Caller;

  beforeAll(async () => {
    h = await Harness.start();
    bob = await h.user('acme', 'bob');
    mallory = await h.user('globex', 'mallory');
    const groups = [
      '/NorthWest/Seattle',
      '/NorthWest/Seattle',
      '/NorthWest',
      '/NorthWest/Portland/Pearl',
      '/South',
      '',
    ];
    await h.devices(bob, groups.length, (n) => ({ group: groups[n - 1] }));
    await h.devices(mallory, 1, () => ({ group: '/Globex' }), 7);
  });
  afterAll(() => h.close());

  it('GET /ws/v1 lists the v1 APIs with their URIs', async () => {
    const response = await h.get(bob, '/ws/v1');
    expect(response.statusCode).toBe(200);
    const { list, count } = response.json() as { count: number; list: { name: string; uri: string }[] };
    expect(count).toBe(list.length);
    expect(list).toEqual(
      expect.arrayContaining([
        { name: 'jobs', uri: '/ws/v1/jobs' },
        { name: 'devices', uri: '/ws/v1/devices' },
        { name: 'groups', uri: '/ws/v1/groups' },
        { name: 'monitors', uri: '/ws/v1/monitors' },
      ]),
    );
    for (const { uri } of list) expect((await h.get(bob, uri)).statusCode).toBe(200);
    expectError(await h.get(null, '/ws/v1'), 401);
  });

  it('lists every path a group has or lies under, counting the devices below, ordered by path', async () => {
    const response = await h.get(bob, '/ws/v1/groups/inventory');
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      count: 5,
      size: 1000,
      list: [
        { path: '/NorthWest', name: 'NorthWest', parent: null, device_count: 4 },
        { path: '/NorthWest/Portland', name: 'Portland', parent: '/NorthWest', device_count: 1 },
        { path: '/NorthWest/Portland/Pearl', name: 'Pearl', parent: '/NorthWest/Portland', device_count: 1 },
        { path: '/NorthWest/Seattle', name: 'Seattle', parent: '/NorthWest', device_count: 2 },
        { path: '/South', name: 'South', parent: null, device_count: 1 },
      ],
    });
  });

  it('takes a query over path, name, parent and device_count, and orderby', async () => {
    const paths = async (parameters: string) => {
      const response = await h.get(bob, `/ws/v1/groups/inventory?${parameters}`);
      expect(response.statusCode, response.body).toBe(200);
      return (response.json().list as { path: string }[]).map((group) => group.path);
    };
    expect(await paths(`query=${q('parent = empty')}`)).toEqual(['/NorthWest', '/South']);
    expect(await paths(`query=${q("name = 'seattle' or device_count >= 4")}`)).toEqual([
      '/NorthWest',
      '/NorthWest/Seattle',
    ]);
    expect(await paths(`query=${q("path startsWith '/northwest/'")}`)).toEqual([
      '/NorthWest/Portland',
      '/NorthWest/Portland/Pearl',
      '/NorthWest/Seattle',
    ]);
    expect(await paths(`query=${q("parent = '/NorthWest'")}&orderby=device_count desc`)).toEqual([
      '/NorthWest/Seattle',
      '/NorthWest/Portland',
    ]);
    expect(await paths('orderby=name asc')).toEqual([
      '/NorthWest',
      '/NorthWest/Portland/Pearl',
      '/NorthWest/Portland',
      '/NorthWest/Seattle',
      '/South',
    ]);
    expect(expectError(await h.get(bob, `/ws/v1/groups/inventory?query=${q('tags = 1')}`), 400)).toMatch(
      /tags/,
    );
    expectError(await h.get(bob, '/ws/v1/groups/inventory?orderby=tags'), 400);
  });

  it('pages with size and cursor, every group once', async () => {
    const seen: string[] = [];
    let uri: string | undefined = '/ws/v1/groups/inventory?size=2';
    while (uri !== undefined) {
      const response = await h.get(bob, uri);
      expect(response.statusCode, response.body).toBe(200);
      const page = response.json() as { size: number; list: { path: string }[]; next_uri?: string };
      expect(page.size).toBe(2);
      seen.push(...page.list.map((group) => group.path));
      uri = page.next_uri;
    }
    expect(seen).toHaveLength(5);
    expect(new Set(seen).size).toBe(5);
  });

  it('answers XML and CSV like the other lists', async () => {
    const xml = await h.get(bob, `/ws/v1/groups/inventory.xml?query=${q("name = 'Seattle'")}`);
    expect(xml.headers['content-type']).toMatch(/^application\/xml/);
    expect(new XMLParser({ parseTagValue: false }).parse(xml.body).result.list.group).toEqual({
      path: '/NorthWest/Seattle',
      name: 'Seattle',
      parent: '/NorthWest',
      device_count: '2',
    });
    const csv = await h.get(bob, '/ws/v1/groups/bulk?fields=path,device_count');
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    expect(parseCsv(csv.body)).toEqual([
      ['path', 'device_count'],
      ['/NorthWest', '4'],
      ['/NorthWest/Portland', '1'],
      ['/NorthWest/Portland/Pearl', '1'],
      ['/NorthWest/Seattle', '2'],
      ['/South', '1'],
    ]);
  });

  it("never shows another account's groups", async () => {
    const response = await h.get(mallory, '/ws/v1/groups/inventory');
    expect(response.json().list).toEqual([
      { path: '/Globex', name: 'Globex', parent: null, device_count: 1 },
    ]);
  });
});
