// The destination side of hand-overs: taken once, by datagram or call; the call confirming a
// datagram gets its result; mismatches, replays, expiry and settling are refused.
import test from 'ava';
import type { ApplyResult } from '../../../agent/net/ip-applier';
import { HANDOVER_EXPECTED_FOR_MS, PreparedHandovers, type HandoverPath } from '../../../agent/ipshadow/prepared-handovers';
import type { VmIpConfig } from '../../../shared/vm-ip-config';

const config = { vm_id: 'vm1', mac: '52:54:00:00:00:01', address: '10.0.0.5', prefix_length: 24 } as VmIpConfig;

function setup() {
  let now = 1_000_000;
  const activations: string[] = [];
  let releaseResume: (() => void) | undefined;
  let holdResume = false;
  const handovers = new PreparedHandovers({
    nowMs: () => now,
    armedResume: async () => {
      if (holdResume) await new Promise<void>((resolve) => (releaseResume = resolve));
    },
    activate: async (cfg: VmIpConfig, token: number, _receivedAt: number, via: HandoverPath) => {
      activations.push(`${cfg.vm_id}/${token}/${via}`);
      return { vmId: cfg.vm_id, action: 'activate', changed: true, steps: [], totalMs: 1 } as ApplyResult;
    },
  });
  return {
    handovers,
    activations,
    advance: (ms: number) => (now += ms),
    hold: () => (holdResume = true),
    release: () => releaseResume?.(),
  };
}

test('a datagram takes the hand-over; the call confirming it gets that result once, a replay is refused', async (t) => {
  const s = setup();
  s.handovers.expect(config, 7, 'hv-a', Buffer.alloc(32));
  t.is(s.handovers.prepared('vm1')?.token, 7);
  const byDatagram = await s.handovers.take(config, 7, 'hv-a', 0, 'datagram');
  t.deepEqual(s.activations, ['vm1/7/datagram']);
  t.is(await s.handovers.take(config, 7, 'hv-a', 0, 'call'), byDatagram, 'the confirmation gets the same result');
  t.deepEqual(s.activations, ['vm1/7/datagram'], 'activated once');
  await t.throwsAsync(s.handovers.take(config, 7, 'hv-a', 0, 'call'), { message: /no hand-over of vm 'vm1' from 'hv-a' with fencing token 7/ });
  t.is(s.handovers.prepared('vm1'), undefined);
});

test('a call takes it alone; a datagram after it is refused', async (t) => {
  const s = setup();
  s.handovers.expect(config, 7, 'hv-a');
  await s.handovers.take(config, 7, 'hv-a', 0, 'call');
  await t.throwsAsync(s.handovers.take(config, 7, 'hv-a', 0, 'datagram'), { name: 'FailedPreconditionError' });
  t.deepEqual(s.activations, ['vm1/7/call']);
});

test('another source or token, or an expired hand-over, is refused and activates nothing', async (t) => {
  const s = setup();
  s.handovers.expect(config, 7, 'hv-a');
  await t.throwsAsync(s.handovers.take(config, 7, 'hv-z', 0, 'call'), { message: /from 'hv-z'/ });
  await t.throwsAsync(s.handovers.take(config, 8, 'hv-a', 0, 'datagram'), { message: /fencing token 8/ });
  t.throws(() => s.handovers.forRehearsal('vm1', 'hv-z'), { name: 'FailedPreconditionError' });
  t.is(s.handovers.forRehearsal('vm1', 'hv-a').token, 7, 'a rehearsal from the prepared source');
  s.advance(HANDOVER_EXPECTED_FOR_MS + 1);
  t.is(s.handovers.prepared('vm1'), undefined);
  await t.throwsAsync(s.handovers.take(config, 7, 'hv-a', 0, 'call'), { name: 'FailedPreconditionError' });
  t.throws(() => s.handovers.forRehearsal('vm1', 'hv-a'));
  t.deepEqual(s.activations, []);
});

test('a hand-over settled by another operation while the guest was starting is refused, not applied', async (t) => {
  const s = setup();
  s.hold();
  s.handovers.expect(config, 7, 'hv-a');
  const taking = s.handovers.take(config, 7, 'hv-a', 0, 'datagram');
  // A rollback's (de)activation of the VM here settles it before the armed resume is over.
  s.handovers.settle('vm1');
  s.release();
  await t.throwsAsync(taking, { message: /settled by another operation/ });
  t.deepEqual(s.activations, []);
  await t.throwsAsync(s.handovers.take(config, 7, 'hv-a', 0, 'call'), { name: 'FailedPreconditionError' }, 'nor is its confirmation');
});

test('a new prepare replaces the one before: its datagram-taken result is not handed to the new one', async (t) => {
  const s = setup();
  s.handovers.expect(config, 7, 'hv-a');
  await s.handovers.take(config, 7, 'hv-a', 0, 'datagram');
  s.handovers.expect(config, 9, 'hv-c');
  await t.throwsAsync(s.handovers.take(config, 7, 'hv-a', 0, 'call'), { name: 'FailedPreconditionError' });
  await s.handovers.take(config, 9, 'hv-c', 0, 'call');
  t.deepEqual(s.activations, ['vm1/7/datagram', 'vm1/9/call']);
});
