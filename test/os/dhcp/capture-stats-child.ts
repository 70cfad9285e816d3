// Helper process for the capture-statistics OS test: opens PcapCaptures inside a lab namespace
// (a process captures in its own namespace) and talks JSON lines. Arguments: one
// `name=ifname[,bufferBytes][/snaplen][:filter]` per capture. Commands: `stats`; `block FIFO`
// (holds the event loop in a blocking read of FIFO, so the rings fill, until the test writes to
// it); `exit`. Besides each capture's stats, it reports what its frame handler saw.
import { closeSync, openSync, readSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { PcapCapture } from '../../../agent/dhcp/pcap-capture';

const out = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify({ child: true, ...o }) + '\n');

interface Seen {
  frames: number;
  truncatedFlags: number;
  maxLength: number;
  /** Frames whose bytes differ from the first frame's (same-content bursts: must stay 0). */
  mismatched: number;
}
const captures = new Map<string, PcapCapture>();
const seen = new Map<string, Seen>();
for (const spec of process.argv.slice(2)) {
  const m = /^([\w-]+)=([\w.-]+)(?:,(\d+))?(?:\/(\d+))?(?::(.*))?$/.exec(spec);
  if (!m) throw new Error(`bad capture spec ${spec}`);
  const [, name, ifname, buffer, snap, filter] = m;
  const s: Seen = { frames: 0, truncatedFlags: 0, maxLength: 0, mismatched: 0 };
  let first: Buffer | undefined;
  seen.set(name, s);
  const capture = PcapCapture.open(
    { interfaceName: ifname, filter, bufferBytes: buffer ? Number(buffer) : undefined, snaplen: snap ? Number(snap) : undefined },
    (frame, length, truncated) => {
      s.frames++;
      if (truncated) s.truncatedFlags++;
      s.maxLength = Math.max(s.maxLength, length);
      const bytes = frame.subarray(0, length);
      if (!first) first = Buffer.from(bytes);
      else if (!first.equals(bytes)) s.mismatched++;
    },
  );
  captures.set(name, capture);
}
const snapshot = () => ({
  stats: Object.fromEntries([...captures].map(([name, c]) => [name, c.stats()])),
  seen: Object.fromEntries(seen),
});
out({ type: 'ready' });

createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, arg] = line.trim().split(' ');
  if (cmd === 'stats') {
    out({ type: 'stats', ...snapshot() });
  } else if (cmd === 'block') {
    out({ type: 'blocking' });
    const fd = openSync(arg, 'r'); // blocks until the test opens the FIFO for writing
    readSync(fd, Buffer.alloc(1));
    closeSync(fd);
    out({ type: 'unblocked' });
  } else if (cmd === 'exit') {
    for (const c of captures.values()) c.close();
    out({ type: 'closed', ...snapshot() });
    process.exit(0);
  }
});
