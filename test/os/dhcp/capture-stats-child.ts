// Helper process for the capture-statistics OS test: opens PcapCaptures inside a lab namespace
// (a process captures in its own namespace) and talks JSON lines. Arguments: one
// `name=ifname[,bufferBytes][:filter]` per capture. Commands: `stats`; `block FIFO` (holds the
// event loop in a blocking read of FIFO, so the rings fill, until the test writes to it); `exit`.
import { closeSync, openSync, readSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { PcapCapture } from '../../../agent/dhcp/pcap-capture';
import { ownPacketSockets } from '../../../agent/net/packet-socket-stats';

const out = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify({ child: true, ...o }) + '\n');

const captures = new Map<string, PcapCapture>();
const socketFds: Record<string, number | undefined> = {};
for (const spec of process.argv.slice(2)) {
  const m = /^([\w-]+)=([\w.-]+)(?:,(\d+))?(?::(.*))?$/.exec(spec);
  if (!m) throw new Error(`bad capture spec ${spec}`);
  const [, name, ifname, buffer, filter] = m;
  const before = new Set(ownPacketSockets().map((s) => s.fd));
  captures.set(name, PcapCapture.open({ interfaceName: ifname, filter, bufferBytes: buffer ? Number(buffer) : undefined }, () => undefined));
  // Reported so the test can check each capture picked a socket of its own.
  socketFds[name] = ownPacketSockets().find((s) => !before.has(s.fd))?.fd;
}
out({ type: 'ready', socketFds, chosenFds: Object.fromEntries([...captures].map(([name, c]) => [name, c.kernelSocketFd])) });

createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, arg] = line.trim().split(' ');
  if (cmd === 'stats') {
    out({ type: 'stats', stats: Object.fromEntries([...captures].map(([name, c]) => [name, c.stats()])) });
  } else if (cmd === 'block') {
    out({ type: 'blocking' });
    const fd = openSync(arg, 'r'); // blocks until the test opens the FIFO for writing
    readSync(fd, Buffer.alloc(1));
    closeSync(fd);
    out({ type: 'unblocked' });
  } else if (cmd === 'exit') {
    for (const c of captures.values()) c.close();
    out({ type: 'closed', stats: Object.fromEntries([...captures].map(([name, c]) => [name, c.stats()])) });
    process.exit(0);
  }
});
