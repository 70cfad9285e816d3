import test from 'ava';
import { CoordinatorLink, type CoordinatorPort, type HeartbeatStream } from '../../../agent/core/coordinator-link';
import { Backoff } from '../../../agent/core/backoff';
import { EMPTY_USAGE } from '../../../shared/host-types';
import { silentLogger } from '../../../shared/log';
import { hostFacts } from '../../fakes/host-facts';
import { until } from '../../helpers/until';

class FakePort implements CoordinatorPort {
  registrations = 0;
  failRegistrations = 0;
  beats: number[] = [];
  private endStream?: (err?: Error) => void;
  async register() {
    this.registrations++;
    if (this.failRegistrations > 0) {
      this.failRegistrations--;
      throw new Error('connection refused');
    }
    return { heartbeatIntervalMs: 20 };
  }
  openHeartbeats(): HeartbeatStream {
    let resolve!: () => void;
    let reject!: (e: Error) => void;
    const closed = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    this.endStream = (err) => (err ? reject(err) : resolve());
    return { closed, send: (_u, seq) => this.beats.push(seq), cancel: () => resolve() };
  }
  breakStream() {
    this.endStream?.(new Error('coordinator went away'));
  }
}

test('the link retries registration until it works, then heartbeats', async (t) => {
  const port = new FakePort();
  port.failRegistrations = 2;
  const errors: string[] = [];
  const link = new CoordinatorLink(port, () => hostFacts('h1'), () => EMPTY_USAGE, 1000, silentLogger(), (m) => errors.push(m));
  link.start();
  await until(() => port.beats.length >= 3, 'three heartbeats');
  t.is(port.registrations, 3);
  t.is(link.current.state, 'COORDINATOR_LINK_STATE_CONNECTED');
  t.deepEqual(errors, ['coordinator: connection refused', 'coordinator: connection refused']);
  link.close();
});

test('a broken heartbeat stream leads to re-registration', async (t) => {
  const port = new FakePort();
  const link = new CoordinatorLink(port, () => hostFacts('h1'), () => EMPTY_USAGE, 1000, silentLogger());
  link.start();
  await until(() => port.beats.length >= 2, 'two heartbeats');
  port.breakStream();
  await until(() => port.registrations === 2, 'the second registration');
  t.is(link.current.lastError, '');
  await until(() => link.current.state === 'COORDINATOR_LINK_STATE_CONNECTED', 'the link connected again');
  link.close();
  t.pass();
});

test('backoff grows, stays within its ceiling, and resets', (t) => {
  const b = new Backoff(100, 1000, () => 1);
  t.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next()], [100, 200, 400, 800, 1000]);
  b.reset();
  t.is(b.next(), 100);
  const low = new Backoff(100, 1000, () => 0);
  t.is(low.next(), 50, 'jitter keeps at least half the delay');
});
