import { XMLParser } from 'fast-xml-parser';

/**
 * What a simulated device answers to an SCI request (CONTRACT §11): the request's payload is
 * `{"sci": "<inner XML>", "attributes": {…}}`, the answer `{"sci": "<reply fragment>"}`, shaped
 * like a Digi device's reply to each operation.
 */

type Node = Record<string, unknown> & { ':@'?: Record<string, string> };

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  processEntities: false,
});

const nameOf = (node: Node): string | undefined =>
  Object.keys(node).find((key) => key !== ':@' && key !== '#text');
const childrenOf = (node: Node): Node[] => {
  const name = nameOf(node);
  const children = name === undefined ? undefined : node[name];
  return Array.isArray(children) ? (children as Node[]).filter((child) => nameOf(child) !== undefined) : [];
};

/** The top-level elements of a fragment (none when it is not XML the device understands). */
function elements(xml: string): Node[] {
  if (/<!(?!--)/.test(xml)) return [];
  try {
    return (parser.parse(xml) as Node[]).filter((node) => nameOf(node) !== undefined);
  } catch {
    return [];
  }
}

const escapeXml = (text: string): string =>
  text.replace(
    /[&<>"]/g,
    (char) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[char] ?? char,
  );

export interface DeviceFacts {
  id: string;
  ip: string;
  firmware_version: string;
  /** Seconds since the device started. */
  uptime: number;
}

/** One RCI command's answer. */
function rciCommand(command: string, facts: DeviceFacts): string {
  switch (command) {
    case 'query_state':
      return `<query_state><device_stats><uptime>${facts.uptime}</uptime><cpu>7</cpu><totalmem>262144</totalmem><usedmem>81920</usedmem></device_stats><interface_info name="eth0"><ip>${escapeXml(facts.ip)}</ip></interface_info><device_info><firmware_version>${escapeXml(facts.firmware_version)}</firmware_version><device_id>${facts.id}</device_id></device_info></query_state>`;
    case 'query_setting':
      return '<query_setting><system><description>simulated device</description><contact/><location/></system></query_setting>';
    default:
      return `<${command}/>`;
  }
}

export function simulatedSciReply(jobType: string, sci: string, facts: DeviceFacts): string {
  const nodes = elements(sci);
  switch (jobType) {
    case 'send_message': {
      const request = nodes.find((node) => nameOf(node) === 'rci_request');
      const commands = request === undefined ? [] : childrenOf(request).map((node) => nameOf(node) ?? '');
      const version = escapeXml(request?.[':@']?.version ?? '1.1');
      return `<rci_reply version="${version}">${commands.map((command) => rciCommand(command, facts)).join('')}</rci_reply>`;
    }
    case 'data_service': {
      const requests = nodes.flatMap((node) => (nameOf(node) === 'requests' ? childrenOf(node) : []));
      const answers = requests.map(
        (request) =>
          `<device_request target_name="${escapeXml(request[':@']?.target_name ?? '')}" status="0">ok</device_request>`,
      );
      return `<requests>${answers.join('')}</requests>`;
    }
    case 'file_system': {
      const commands = nodes.flatMap((node) => (nameOf(node) === 'commands' ? childrenOf(node) : []));
      const answers = commands.map((command) => {
        const name = nameOf(command) ?? '';
        if (name !== 'ls') return `<${name}/>`;
        const dir = escapeXml(command[':@']?.path ?? '/');
        return `<ls path="${dir}"><file path="${dir === '/' ? '' : dir}/config.txt" size="512" last_modified="1764633600"/></ls>`;
      });
      return `<commands>${answers.join('')}</commands>`;
    }
    case 'update_firmware':
      return '<submitted/>';
    default:
      // reboot and disconnect: done, nothing to say
      return '';
  }
}
