// Type declarations for the parts of the `cap` libpcap binding (0.2.x) still used: raw frame sending
// (agent/net/garp-sender.ts, the OS tests' injector). Capture goes through our addon (pcap-capture.ts).
declare module 'cap' {
  import { EventEmitter } from 'node:events';
  export class Cap extends EventEmitter {
    /** Returns the link type name, e.g. 'ETHERNET'. Throws on an unknown device or bad filter. */
    open(device: string, filter: string, bufSize: number, buffer: Buffer): string;
    close(): void;
    send(buffer: Buffer, nBytes?: number): void;
    on(event: 'packet', listener: (nbytes: number, truncated: boolean) => void): this;
    static findDevice(ip?: string): string | undefined;
    static deviceList(): Array<{ name: string; description?: string; addresses: unknown[] }>;
  }
}
