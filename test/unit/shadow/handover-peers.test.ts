// The hand-over peers an agent keeps connected: its memory replication's destinations, each once,
// dialed now and again on every tick, and a peer that cannot be dialed does not stop the others.
import test from 'ava';
import { keepPeersConnected, replicationPeers, type HandOverPeer } from '../../../agent/ipshadow/handover-peers';

test('every replication destination once, across VMs; the last endpoint seen for a host wins', (t) => {
  const peers = replicationPeers([
    { endpoints: { b: '10.0.0.2:7701', c: '10.0.0.3:7701' } },
    { endpoints: { b: '10.0.0.2:7701' } },
    { endpoints: { c: '10.0.0.33:7701' } },
  ]);
  t.deepEqual(peers, [
    { hostId: 'b', endpoint: '10.0.0.2:7701' },
    { hostId: 'c', endpoint: '10.0.0.33:7701' },
  ]);
  t.deepEqual(replicationPeers([]), []);
});

test('peers are connected on every tick, at the peers known then; a failing dial does not stop the rest; stop() ends it', async (t) => {
  let known: HandOverPeer[] = [{ hostId: 'b', endpoint: 'b:1' }];
  const dialed: string[] = [];
  const keeper = keepPeersConnected(
    () => known,
    (p) => {
      if (p.hostId === 'bad') throw new Error('cannot dial');
      dialed.push(p.hostId);
    },
    10,
  );
  await new Promise((r) => setTimeout(r, 35));
  t.true(dialed.length >= 2 && dialed.every((h) => h === 'b'));
  known = [{ hostId: 'bad', endpoint: 'x' }, { hostId: 'c', endpoint: 'c:1' }];
  await new Promise((r) => setTimeout(r, 25));
  t.true(dialed.includes('c'), 'a peer after a failing one is still dialed');
  keeper.stop();
  const n = dialed.length;
  await new Promise((r) => setTimeout(r, 30));
  t.is(dialed.length, n, 'nothing after stop()');
});
