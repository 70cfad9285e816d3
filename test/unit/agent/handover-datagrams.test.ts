// Both ends of the hand-over datagram over real UDP on loopback: a prepared hand-over is accepted,
// taken and answered, a rehearsal changes nothing and is answered, and datagrams under another
// key, for another token, from another source, before any prepare or malformed are dropped and
// counted.
import test from 'ava';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { HandoverDatagrams, type HandoverDestination } from '../../../agent/ipshadow/handover-datagrams';
import type { PreparedHandover } from '../../../agent/ipshadow/prepared-handovers';
import { encodeHandoverDatagram } from '../../../shared/handover-datagram';
import { silentLogger } from '../../../shared/log';

/** A free UDP port on loopback (bound, read, released). */
async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(resolve));
  return port;
}

class FakeDestination implements HandoverDestination {
  readonly prepares = new Map<string, Pick<PreparedHandover, 'sourceHost' | 'token' | 'datagramKey'>>();
  readonly taken: string[] = [];
  readonly rehearsed: string[] = [];
  failTake = false;
  /** When set, take() waits for it (an activation waiting for the guest's device state). */
  holdTake?: Promise<void>;
  prepared(vmId: string) {
    return this.prepares.get(vmId);
  }
  async take(vmId: string, token: number, sourceHost: string) {
    if (this.holdTake) await this.holdTake;
    if (this.failTake) throw new Error('activation failed');
    this.taken.push(`${vmId}/${token}/${sourceHost}`);
  }
  async rehearse(vmId: string) {
    this.rehearsed.push(vmId);
  }
}

async function counts(metrics: Registry): Promise<Record<string, number>> {
  const m = await metrics.getSingleMetric('umbra_agent_handover_datagrams_total')!.get();
  return Object.fromEntries(m.values.map((v) => [String(v.labels.outcome), v.value]));
}

async function pair() {
  const [srcPort, dstPort] = [await freeUdpPort(), await freeUdpPort()];
  const dest = new FakeDestination();
  const srcMetrics = new Registry();
  const dstMetrics = new Registry();
  const source = await HandoverDatagrams.open(`127.0.0.1:${srcPort}`, 'hv-a', new FakeDestination(), silentLogger(), srcMetrics);
  const destination = await HandoverDatagrams.open(`127.0.0.1:${dstPort}`, 'hv-b', dest, silentLogger(), dstMetrics);
  const endpoint = `127.0.0.1:${dstPort}`;
  return { source, destination, dest, endpoint, srcMetrics, dstMetrics, close: () => (source.close(), destination.close()) };
}

test('a prepared hand-over is taken on its datagram and answered; the source hears the answer', async (t) => {
  const p = await pair();
  t.teardown(p.close);
  const key = randomBytes(32);
  p.dest.prepares.set('vm1', { sourceHost: 'hv-a', token: 7, datagramKey: key });
  t.true(await p.source.rehearse(p.endpoint, 'vm1', 7, key, 1000));
  t.deepEqual(p.dest.rehearsed, ['vm1']);
  t.deepEqual(p.dest.taken, [], 'a rehearsal takes nothing');
  t.true(await p.source.handOver(p.endpoint, 'vm1', 7, key, 1000, 1000));
  t.deepEqual(p.dest.taken, ['vm1/7/hv-a']);
  t.like(await counts(p.dstMetrics), { rehearsed: 1, taken: 1 });
  t.like(await counts(p.srcMetrics), { answered: 1 });
  t.deepEqual(p.destination.receiving, { bound: `127.0.0.1:${p.endpoint.split(':')[1]}`, error: undefined });
});

test('datagrams that do not match the prepared hand-over are refused, take nothing and get no answer', async (t) => {
  const p = await pair();
  t.teardown(p.close);
  const key = randomBytes(32);
  p.dest.prepares.set('vm1', { sourceHost: 'hv-a', token: 7, datagramKey: key });
  t.false(await p.source.handOver(p.endpoint, 'vm1', 7, randomBytes(32), 150, 150), 'another key');
  t.false(await p.source.handOver(p.endpoint, 'vm1', 8, key, 150, 150), 'another token');
  t.false(await p.source.handOver(p.endpoint, 'vm2', 7, key, 150, 150), 'a VM not prepared here');
  // Another source (its own name in the datagram) with the right key is refused as well.
  const other = dgram.createSocket('udp4');
  t.teardown(() => other.close());
  other.send(encodeHandoverDatagram({ kind: 'take', vmId: 'vm1', fencingToken: 7, sourceHost: 'hv-z' }, key), Number(p.endpoint.split(':')[1]), '127.0.0.1');
  other.send(Buffer.from('not a hand-over datagram'), Number(p.endpoint.split(':')[1]), '127.0.0.1');
  // Until both are read (they answer nothing to wait for).
  for (let i = 0; i < 100; i++) {
    const c = await counts(p.dstMetrics);
    if (c.refused === 4 && c.malformed === 1) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  t.deepEqual(p.dest.taken, []);
  t.like(await counts(p.dstMetrics), { refused: 4, malformed: 1 });
  t.like(await counts(p.srcMetrics), { unanswered: 3 });
});

test('a take is accepted at once; the source waits for its activation only up to its bound', async (t) => {
  const p = await pair();
  t.teardown(p.close);
  const key = randomBytes(32);
  p.dest.prepares.set('vm1', { sourceHost: 'hv-a', token: 7, datagramKey: key });
  let release!: () => void;
  p.dest.holdTake = new Promise<void>((r) => (release = r));
  // The activation waits (as for a guest's device state there): accepted, and the wait for "taken" ends at its bound.
  t.true(await p.source.handOver(p.endpoint, 'vm1', 7, key, 1000, 200));
  t.deepEqual(p.dest.taken, []);
  release();
  for (let i = 0; i < 100 && !(await counts(p.dstMetrics)).taken; i++) await new Promise((r) => setTimeout(r, 20));
  t.deepEqual(p.dest.taken, ['vm1/7/hv-a']);
  // Its late "taken" finds nothing waiting.
  for (let i = 0; i < 100 && !(await counts(p.srcMetrics)).late; i++) await new Promise((r) => setTimeout(r, 20));
  t.like(await counts(p.srcMetrics), { answered: 1, late: 1 });
});

test('a rehearsal before the prepare is early, not refused; a failed take is accepted, then counted as failed', async (t) => {
  const p = await pair();
  t.teardown(p.close);
  const key = randomBytes(32);
  t.false(await p.source.rehearse(p.endpoint, 'vm1', 7, key, 150));
  t.like(await counts(p.dstMetrics), { early: 1 });
  p.dest.prepares.set('vm1', { sourceHost: 'hv-a', token: 7, datagramKey: key });
  p.dest.failTake = true;
  // Accepted (registered there) before it failed: the confirming call gets the failure.
  t.true(await p.source.handOver(p.endpoint, 'vm1', 7, key, 1000, 150));
  for (let i = 0; i < 100 && !(await counts(p.dstMetrics)).failed; i++) await new Promise((r) => setTimeout(r, 20));
  t.like(await counts(p.dstMetrics), { failed: 1 });
});

test('a destination not listening leaves the source unanswered, without an error', async (t) => {
  const p = await pair();
  t.teardown(p.close);
  const closedPort = await freeUdpPort();
  t.false(await p.source.handOver(`127.0.0.1:${closedPort}`, 'vm1', 7, randomBytes(32), 150, 150));
});

test('an agent listening on any free port (0) receives no datagrams and says why', async (t) => {
  const d = await HandoverDatagrams.open('127.0.0.1:0', 'hv-a', new FakeDestination(), silentLogger(), new Registry());
  t.teardown(() => d.close());
  t.is(d.receiving.bound, undefined);
  t.regex(d.receiving.error ?? '', /any free port/);
});
