// DhcpSniffer against real peers: dnsmasq serves udhcpc across a lab bridge while the sniffer
// captures on the guest's interface; it must learn the lease the guest really got, see a
// renewal that changes the DNS option, and count injected malformed frames without dying.
import test from 'ava';
import { type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { encodeDhcpFrame } from '../../../agent/dhcp/dhcp-frame-codec';
import { encodeDhcpPacket } from '../../../agent/dhcp/dhcp-packet-codec';
import type { LeaseChangeEvent } from '../../../agent/dhcp/dhcp-lease-table';
import type { DhcpSnifferStats } from '../../../agent/dhcp/dhcp-sniffer';
import { isRoot, NetnsLab, run, waitFor } from '../../helpers/netns';

const ROOT = join(__dirname, '../../../..');
const UDHCPC_SCRIPT = join(ROOT, 'test/fixtures/dhcp/udhcpc-script.sh');
const GUEST_MAC = '52:54:00:aa:bb:01';
const OTHER_MAC = '52:54:00:aa:bb:02';

const lab = new NetnsLab('dh');
const tmp = mkdtempSync(join(tmpdir(), 'umbra-dhcp-os-'));

interface ChildLine {
  type: string;
  event?: LeaseChangeEvent;
  stats?: DhcpSnifferStats;
}

test.after.always(async () => {
  await lab.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

function startDnsmasq(ns: string, dns: string): ChildProcess {
  return lab.spawn(ns, 'dnsmasq', [
    '--no-daemon', '--conf-file=/dev/null', '--port=0', '--user=root', '--bind-interfaces', '--interface=eth0',
    '--except-interface=lo', '--dhcp-authoritative', '--no-ping', `--dhcp-leasefile=${join(tmp, 'leases')}`,
    '--dhcp-range=10.77.0.50,10.77.0.150,255.255.255.0,600',
    '--dhcp-option=option:router,10.77.0.1', `--dhcp-option=option:dns-server,${dns}`,
    '--dhcp-option=option:domain-name,lab.umbra.test',
  ]);
}

test('the sniffer learns the guest lease, sees a changed DNS option on renewal, and survives malformed frames', async (t) => {
  if (!isRoot()) {
    t.log('skipped: needs root for network namespaces, dnsmasq and packet capture');
    t.pass();
    return;
  }
  await lab.start();
  const srv = await lab.addHost('srv');
  const guest = await lab.addHost('gst');
  const other = await lab.addHost('oth');
  await lab.link(srv, { bridge: 'vmnet', ifname: 'eth0', address: '10.77.0.1/24' });
  await lab.link(guest, { bridge: 'vmnet', ifname: 'eth0', mac: GUEST_MAC });
  await lab.link(other, { bridge: 'vmnet', ifname: 'eth0', mac: OTHER_MAC });

  // The sniffer captures on the guest's interface, as the agent does on a VM's tap device; the
  // other guest's broadcasts reach it too and must be ignored (its MAC is not watched).
  const child = lab.spawn(guest, process.execPath, [join(__dirname, 'sniffer-child.js'), 'eth0', GUEST_MAC], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, UMBRA_LOG_LEVEL: 'warn' },
  });
  const lines: ChildLine[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => {
    try {
      const o = JSON.parse(l);
      if (o.child) lines.push(o);
    } catch {
      /* not ours */
    }
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  await waitFor('sniffer ready', async () => lines.some((l) => l.type === 'ready') || (child.exitCode !== null && Promise.reject(new Error(stderr))));
  const events = () => lines.filter((l) => l.type === 'event').map((l) => l.event!);

  let dnsmasq = startDnsmasq(srv, '10.77.0.53');
  const udhcpc = lab.spawn(guest, 'udhcpc', ['-f', '-i', 'eth0', '-s', UDHCPC_SCRIPT, '-x', 'hostname:guest1', '-t', '10', '-T', '1', '-A', '2'], {
    env: { ...process.env, UDHCPC_LOG: join(tmp, 'udhcpc.log') },
  });
  // A second client whose MAC is not watched: its lease must not reach the table.
  lab.spawn(other, 'udhcpc', ['-f', '-i', 'eth0', '-s', UDHCPC_SCRIPT, '-t', '10', '-T', '1', '-A', '2']);

  const bound = await waitFor('bound event', async () => events().find((e) => e.kind === 'bound'), 30000).catch(async (err) => {
    t.log({ stderr, stats: await stats(child, lines), udhcpc: await run('cat', [join(tmp, 'udhcpc.log')]).catch(() => ''), fdb: await run('ip', ['netns', 'exec', lab.switchNs, 'bridge', '-d', 'link']) });
    throw err;
  });
  const guestAddr = await waitFor('address in the guest', async () => {
    const m = /inet (\d+\.\d+\.\d+\.\d+)\/(\d+)/.exec(await lab.exec(guest, 'ip', ['-4', 'addr', 'show', 'dev', 'eth0']));
    return m ? { address: m[1], prefix: Number(m[2]) } : undefined;
  }, 40000).catch(async (err) => {
    t.log({ ip: await lab.exec(guest, 'ip', ['addr']), udhcpc: await run('cat', [join(tmp, 'udhcpc.log')]).catch(() => ''), events: events() });
    throw err;
  });
  await waitFor('address in the other guest', async () => /inet /.test(await lab.exec(other, 'ip', ['-4', 'addr', 'show', 'dev', 'eth0'])), 40000);
  t.is(bound.mac, GUEST_MAC);
  t.is(bound.lease.address, guestAddr.address);
  t.is(guestAddr.prefix, 24);
  t.like(bound.lease, { subnetMask: '255.255.255.0', routers: ['10.77.0.1'], dnsServers: ['10.77.0.53'], domainName: 'lab.umbra.test', serverId: '10.77.0.1', leaseTimeSec: 600, hostname: 'guest1' });
  t.true(events().every((e) => e.mac === GUEST_MAC), 'only the watched MAC is reported');

  // New DNS option on the server, then a forced renewal.
  await lab.stop(dnsmasq);
  dnsmasq = startDnsmasq(srv, '10.77.0.99');
  await new Promise((r) => setTimeout(r, 500));
  udhcpc.kill('SIGUSR1');
  const changed = await waitFor('changed event', async () => events().find((e) => e.kind === 'changed'), 30000);
  t.deepEqual(changed.changedFields, ['dnsServers']);
  t.deepEqual(changed.lease.dnsServers, ['10.77.0.99']);
  t.deepEqual(changed.previous?.dnsServers, ['10.77.0.53']);
  t.is(changed.lease.address, guestAddr.address);
  t.true(changed.version > bound.version);

  // Malformed frames on the wire: counted per reason and dropped.
  const good = encodeDhcpFrame({
    srcMac: GUEST_MAC,
    payload: encodeDhcpPacket({ xid: 77, chaddr: GUEST_MAC, messageType: 3, requestedAddress: guestAddr.address }),
  });
  const badMagic = Buffer.from(good);
  badMagic[42 + 236] = 0;
  const lyingLength = Buffer.from(good);
  lyingLength[42 + 240 + 1] = 250;
  const noEnd = Buffer.from(good);
  noEnd.fill(0x0c, 42 + 240);
  const before = await stats(child, lines);
  for (const f of [badMagic, lyingLength, noEnd]) child.stdin!.write(`inject ${f.toString('hex')}\n`);
  const after = await waitFor('malformed counted', async () => {
    const s = await stats(child, lines);
    return s.malformed - before.malformed >= 3 ? s : undefined;
  });
  t.is(after.malformedByReason.BAD_MAGIC - before.malformedByReason.BAD_MAGIC, 1);
  t.is(after.malformedByReason.TRUNCATED - before.malformedByReason.TRUNCATED, 2);
  t.is(after.internalErrors, 0);
  t.true(after.ignored > 0, 'the unwatched guest was seen and ignored');
  // The kernel's counts of the capture socket: every frame libpcap delivered passed the filter
  // in the kernel (outgoing injected ones included), and none was dropped at this rate.
  const eth0 = after.captures.eth0;
  t.is(eth0.kernelStatsUnavailable, undefined);
  t.is(eth0.kernelDropped, 0);
  t.true((eth0.kernelReceived ?? -1) >= eth0.captured, `kernel received ${eth0.kernelReceived} >= captured ${eth0.captured}`);
  t.is(child.exitCode, null, 'the sniffer is still running');
  child.stdin!.write('exit\n');
});

async function stats(child: ChildProcess, lines: ChildLine[]): Promise<DhcpSnifferStats> {
  const n = lines.length;
  child.stdin!.write('stats\n');
  return waitFor('stats', async () => lines.slice(n).find((l) => l.type === 'stats')?.stats);
}
