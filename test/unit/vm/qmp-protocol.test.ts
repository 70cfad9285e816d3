// QMP framing and classification: split chunks, greetings, returns, errors, events, garbage.
import test from 'ava';
import { QmpStreamDecoder, classifyQmpMessage, encodeQmpCommand } from '../../../agent/vm/qmp-protocol';

const GREETING = '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7"}, "capabilities": ["oob"]}}\r\n';

test('decodes a greeting split across chunks', (t) => {
  const d = new QmpStreamDecoder();
  t.deepEqual(d.feed(GREETING.slice(0, 17)), []);
  const msgs = d.feed(GREETING.slice(17));
  t.is(msgs.length, 1);
  const g = msgs[0];
  if (g.kind !== 'greeting') return t.fail(`got ${g.kind}`);
  t.deepEqual(g.capabilities, ['oob']);
  t.is(g.version?.qemu?.major, 7);
});

test('decodes several messages in one chunk, in order', (t) => {
  const d = new QmpStreamDecoder();
  const msgs = d.feed(
    '{"return": {}, "id": "u1"}\r\n' +
      '{"timestamp": {"seconds": 1700000000, "microseconds": 123456}, "event": "STOP"}\r\n' +
      '{"error": {"class": "CommandNotFound", "desc": "The command foo has not been found"}, "id": "u2"}\r\n',
  );
  t.deepEqual(
    msgs.map((m) => m.kind),
    ['return', 'event', 'error'],
  );
  t.deepEqual(msgs[0], { kind: 'return', id: 'u1', value: {} });
  t.deepEqual(msgs[1], { kind: 'event', event: 'STOP', data: {}, timestampMs: 1700000000123 });
  t.deepEqual(msgs[2], { kind: 'error', id: 'u2', errorClass: 'CommandNotFound', desc: 'The command foo has not been found' });
  t.is(d.malformedCount, 0);
});

test('event data is kept; numeric ids become strings', (t) => {
  t.deepEqual(classifyQmpMessage({ event: 'MIGRATION', data: { status: 'completed' } }), { kind: 'event', event: 'MIGRATION', data: { status: 'completed' }, timestampMs: undefined });
  t.deepEqual(classifyQmpMessage({ return: { status: 'running', running: true }, id: 7 }), { kind: 'return', id: '7', value: { status: 'running', running: true } });
});

test('malformed lines are counted and dropped without losing the next message', (t) => {
  const d = new QmpStreamDecoder();
  const msgs = d.feed('not json\n[1,2]\n{"foo": 1}\n\n{"return": 5, "id": "u9"}\n');
  t.deepEqual(msgs, [{ kind: 'return', id: 'u9', value: 5 }]);
  t.is(d.malformedCount, 3);
});

test('an error object without class/desc still classifies', (t) => {
  t.deepEqual(classifyQmpMessage({ error: {} }), { kind: 'error', id: undefined, errorClass: 'Unknown', desc: '' });
  t.is(classifyQmpMessage(null), undefined);
  t.is(classifyQmpMessage('x'), undefined);
});

test('encodes commands with and without arguments', (t) => {
  t.is(encodeQmpCommand('stop', undefined, 'u1'), '{"execute":"stop","id":"u1"}\r\n');
  t.is(encodeQmpCommand('stop', {}, 'u1'), '{"execute":"stop","id":"u1"}\r\n');
  const line = encodeQmpCommand('migrate', { uri: 'unix:/tmp/m.sock' }, 'u2');
  t.deepEqual(JSON.parse(line), { execute: 'migrate', id: 'u2', arguments: { uri: 'unix:/tmp/m.sock' } });
  t.true(line.endsWith('\r\n'));
});
