// Receiving side of the delta-stream benchmark, run as its own process (its own core):
//   grpc <dataDir>      a ReplicationService (shadow receiver, image on <dataDir>)
//   tcp <totalBytes>    a raw TCP sink that answers one byte after <totalBytes> arrived
// Prints the port it listens on, then runs until killed.
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { LevelStore } from '../../shared/level-store';
import { silentLogger } from '../../shared/log';
import { serviceDefinition } from '../../shared/proto';
import { ReplicationReceiver } from '../../agent/replication/replication-receiver';
import { REPLICATION_SERVICE_NAME, replicationServiceHandlers } from '../../agent/replication/replication-service';

// A clean exit on SIGTERM (the bench ends receivers so), so that a --cpu-prof profile gets written.
// UMBRA_BENCH_RECEIVER_THREADS=1: each thread's CPU ticks (user, system) and the process's minor page
// faults go to stderr at exit (where the receiver's time goes besides what --cpu-prof sees).
process.on('SIGTERM', () => {
  if (process.env.UMBRA_BENCH_RECEIVER_THREADS) {
    for (const t of readdirSync('/proc/self/task')) {
      const st = readFileSync(`/proc/self/task/${t}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      process.stderr.write(`receiver ${process.argv[2]} thread ${t} ${st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'))}: user ${f[11]} system ${f[12]} ticks, minor faults ${f[7]}\n`);
    }
  }
  process.exit(0);
});

async function main(): Promise<void> {
  const [mode, arg] = process.argv.slice(2);
  if (mode === 'grpc') {
    const store = await LevelStore.open(`${arg}/db`);
    const receiver = new ReplicationReceiver({ imageDir: arg, store, log: silentLogger() });
    const server = new grpc.Server({ 'grpc.max_receive_message_length': 16 << 20 });
    server.addService(serviceDefinition(REPLICATION_SERVICE_NAME), replicationServiceHandlers(receiver));
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    console.log(port);
  } else {
    const total = Number(arg);
    const server = net.createServer((sock) => {
      let got = 0;
      sock.on('data', (d) => {
        got += d.length;
        if (got >= total) sock.end(Buffer.from([1]));
      });
    });
    server.listen(0, '127.0.0.1', () => console.log((server.address() as net.AddressInfo).port));
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
