// Test/bench helper: runs native/shm-writer.c (a process with a shared memfd mapping, like QEMU's
// guest RAM) with the uffd preload library, and sends it write commands. Killed by PID on close().
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { shmWriterPath, uffdPreloadLibraryPath } from '../../../agent/memory/native-binding';

export class ShmWriterProcess {
  private buf = '';
  private readonly waiters: Array<(line: string) => void> = [];
  startAddress = 0;
  sizeBytes = 0;

  private constructor(readonly child: ChildProcessByStdio<Writable, Readable, null>) {
    child.stdout.on('data', (d: Buffer) => {
      this.buf += d.toString();
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        this.waiters.shift()?.(line);
      }
    });
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** Starts the writer with `pageCount` pages; with `preload` the process holds a WP_ASYNC userfaultfd. */
  static async start(pageCount: number, preload = true): Promise<ShmWriterProcess> {
    const env = { ...process.env, ...(preload ? { LD_PRELOAD: uffdPreloadLibraryPath() } : {}) };
    const child = spawn(shmWriterPath(), [String(pageCount)], { env, stdio: ['pipe', 'pipe', 'inherit'] });
    const w = new ShmWriterProcess(child);
    const ready = (await w.line()).split(' ');
    if (ready[0] !== 'ready') throw new Error(`shm-writer did not start: ${ready.join(' ')}`);
    w.startAddress = parseInt(ready[1], 16);
    w.sizeBytes = Number(ready[2]);
    return w;
  }

  private line(): Promise<string> {
    return new Promise((resolve, reject) => {
      const onExit = () => reject(new Error('shm-writer exited'));
      this.child.once('exit', onExit);
      this.waiters.push((l) => {
        this.child.off('exit', onExit);
        resolve(l);
      });
    });
  }

  /** Runs one command (fill/pattern/poke/random) and waits until the writes are done. */
  async cmd(command: string): Promise<void> {
    this.child.stdin.write(command + '\n');
    const reply = await this.line();
    if (reply !== 'ok') throw new Error(`shm-writer: ${command}: ${reply}`);
  }

  close(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}
