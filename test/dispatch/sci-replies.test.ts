import { XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { simulatedSciReply } from '../../src/dispatch/sci-replies.js';

const facts = {
  id: '00000000-00000000-00000000-00000001',
  ip: '10.0.0.1',
  firmware_version: '1.0.0',
  uptime: 42,
};

describe('what a simulated device answers to SCI', () => {
  it('an rci_request answers an rci_reply with one answer per command, query_state with device stats', () => {
    const reply = simulatedSciReply(
      'send_message',
      '<rci_request version="1.1"><query_state/><query_setting/><set_setting><x/></set_setting></rci_request>',
      facts,
    );
    expect(reply).toMatch(/^<rci_reply version="1.1"><query_state><device_stats><uptime>42<\/uptime>/);
    expect(reply).toContain('<ip>10.0.0.1</ip>');
    expect(reply).toContain('<query_setting><system>');
    expect(reply).toMatch(/<set_setting\/><\/rci_reply>$/);
    expect(XMLValidator.validate(reply)).toBe(true);
  });

  it('data_service, file_system, update_firmware, reboot and disconnect get plausible replies', () => {
    expect(
      simulatedSciReply(
        'data_service',
        '<requests><device_request target_name="echo">hi</device_request></requests>',
        facts,
      ),
    ).toBe('<requests><device_request target_name="echo" status="0">ok</device_request></requests>');
    expect(
      simulatedSciReply('file_system', '<commands><ls path="/etc"/><rm path="/x"/></commands>', facts),
    ).toBe(
      '<commands><ls path="/etc"><file path="/etc/config.txt" size="512" last_modified="1764633600"/></ls><rm/></commands>',
    );
    expect(simulatedSciReply('update_firmware', '<data>AA==</data>', facts)).toBe('<submitted/>');
    expect(simulatedSciReply('reboot', '', facts)).toBe('');
    expect(simulatedSciReply('disconnect', '', facts)).toBe('');
  });
});
