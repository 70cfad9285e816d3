// Helper process for the DHCP OS test: runs a DhcpSniffer inside a lab namespace (a process can
// only capture in its own namespace) and talks JSON lines: events and stats out, commands in.
import { createInterface } from 'node:readline';
import { Cap } from 'cap';
import { DhcpSniffer } from '../../../agent/dhcp/dhcp-sniffer';
import { PcapCapture } from '../../../agent/dhcp/pcap-capture';

// Optional third argument: the capture ring size in bytes (the agent's default otherwise).
const [ifname, watch, bufferArg] = process.argv.slice(2);
const bufferBytes = bufferArg ? Number(bufferArg) : undefined;
const out = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify({ child: true, ...o }) + '\n');

const sniffer = new DhcpSniffer({
  interfaces: [ifname],
  watchedMacs: watch ? watch.split(',') : undefined,
  openCapture: (interfaceName, onFrame) => PcapCapture.open({ interfaceName, bufferBytes }, onFrame),
});
sniffer.onLeaseChange((event) => out({ type: 'event', event }));
sniffer.start();
// A second handle on the same interface injects frames; the sniffer sees them as outgoing traffic.
const injector = new Cap();
injector.open(ifname, 'ether proto 0x9999', 1 << 20, Buffer.alloc(65535));
out({ type: 'ready' });

createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, arg] = line.trim().split(' ');
  if (cmd === 'stats') {
    out({ type: 'stats', stats: sniffer.stats(), leases: sniffer.leases.list() });
  } else if (cmd === 'inject') {
    const frame = Buffer.from(arg, 'hex');
    injector.send(frame, frame.length);
    out({ type: 'injected' });
  } else if (cmd === 'exit') {
    sniffer.close();
    injector.close();
    process.exit(0);
  }
});
