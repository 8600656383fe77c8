import { describe, expect, it } from 'vitest';
import { parseSciRequest } from '../../src/api/sci/request.js';

const request = (attributes: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>
<sci_request version="1.0">
  <!-- a comment is fine -->
  <send_message${attributes}>
    <targets><device id="00000000-00000000-0004f3ff-ff0123ab"/><device tag="sensor"/><group path="NorthWest/"/></targets>
    <rci_request version="1.1"><set_setting><system><description>a &amp; b</description></system></set_setting></rci_request>
  </send_message>
</sci_request>`;

describe('reading an SCI request', () => {
  it('reads the operation, its attributes as text, the targets and the payload without <targets>', () => {
    const sci = parseSciRequest(
      request(' synchronous="false" allowOffline="true" reply="errors" cache="false"'),
    );
    expect(sci).toEqual({
      operation: 'send_message',
      attributes: { synchronous: 'false', allowOffline: 'true', reply: 'errors', cache: 'false' },
      synchronous: false,
      syncTimeoutSeconds: 60,
      allowOffline: true,
      reply: 'errors',
      targets: {
        devices: ['00000000-00000000-0004F3FF-FF0123AB'],
        malformed: [],
        tags: ['sensor'],
        groups: ['/NorthWest'],
        all: false,
      },
      payload:
        '<rci_request version="1.1"><set_setting><system><description>a &amp; b</description></system></set_setting></rci_request>',
    });
  });

  it('is synchronous for 60 seconds by default, and waits at most 300', () => {
    expect(parseSciRequest(request('')).synchronous).toBe(true);
    expect(parseSciRequest(request(' syncTimeout="5"')).syncTimeoutSeconds).toBe(5);
    expect(parseSciRequest(request(' syncTimeout="3600"')).syncTimeoutSeconds).toBe(300);
    expect(() => parseSciRequest(request(' syncTimeout="0"'))).toThrow(/syncTimeout/);
  });

  it('refuses a DTD even without entities, and XML nested too deeply for the parser', () => {
    expect(() => parseSciRequest(`<!DOCTYPE sci_request>${request('')}`)).toThrow(/DTD/);
    const deep = `<sci_request version="1.0"><reboot><targets><device id="all"/></targets>${'<a>'.repeat(100_000)}${'</a>'.repeat(100_000)}</reboot></sci_request>`;
    expect(() => parseSciRequest(deep)).toThrow(/^XML not accepted: /);
  });
});
