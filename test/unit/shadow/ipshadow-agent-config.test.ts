// The agent's ipshadow section: capture ring size in MiB, bounded, reported with its path; hand-over datagrams.
import test from 'ava';
import { ConfigReader } from '../../../shared/config-reader';
import { parseIpShadowAgentConfig } from '../../../agent/ipshadow/ipshadow-config';
import { DEFAULT_CAPTURE_BUFFER_BYTES } from '../../../agent/dhcp/pcap-capture';

const MIB = 1024 * 1024;
const parse = (raw: unknown) => {
  const r = new ConfigReader('agent.yaml');
  const c = parseIpShadowAgentConfig(r, raw, 'ipshadow');
  return { c, problems: r.problems };
};

test('capture ring: the default, and a size in MiB', (t) => {
  t.is(parse({}).c.captureBufferBytes, DEFAULT_CAPTURE_BUFFER_BYTES);
  t.is(parse({ capture_buffer_mib: 64 }).c.captureBufferBytes, 64 * MIB);
});

test('capture ring out of bounds or not an integer: reported at its path', (t) => {
  for (const bad of [0, 2048, 1.5, 'big']) {
    const { problems } = parse({ capture_buffer_mib: bad });
    t.true(problems.some((p) => p.path === 'ipshadow.capture_buffer_mib'), JSON.stringify({ bad, problems }));
  }
});

test('hand-over datagrams: on by default, off when set false, a non-boolean reported at its path', (t) => {
  t.true(parse({}).c.handoverDatagrams);
  t.false(parse({ handover_datagrams: false }).c.handoverDatagrams);
  const { problems } = parse({ handover_datagrams: 'yes' });
  t.true(problems.some((p) => p.path === 'ipshadow.handover_datagrams'), JSON.stringify(problems));
});
