// A grpc-js client-streaming echo over loopback whose messages are raw Buffers (no protobuf), for
// tests that pin how grpc-js frames, sends or receives message bytes. The server's handler sees
// each call; once the client ends, the server answers "done" and ends the call.
import * as grpc from '@grpc/grpc-js';

const raw = (b: Buffer) => b;
const MAX_MESSAGE_BYTES = 16 << 20;

export interface RawStreamServer {
  /** Writes `messages` on one call (onWrite sees each just before), ends it, resolves at the server's end. */
  send(messages: Buffer[], onWrite?: (m: Buffer, i: number) => void): Promise<void>;
  close(): void;
}

export async function startRawStreamServer(
  name: string,
  onCall: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => void,
  clientOptions: grpc.ChannelOptions = {},
): Promise<RawStreamServer> {
  const service: grpc.ServiceDefinition = {
    Stream: { path: `/umbra.test.${name}/Stream`, requestStream: true, responseStream: true, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw },
  };
  const server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_MESSAGE_BYTES });
  server.addService(service, {
    Stream(call: grpc.ServerDuplexStream<Buffer, Buffer>) {
      onCall(call);
      call.on('end', () => {
        call.write(Buffer.from('done'));
        call.end();
      });
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const Client = grpc.makeGenericClientConstructor(service, name);
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': MAX_MESSAGE_BYTES, ...clientOptions });
  return {
    send: (messages, onWrite) =>
      new Promise<void>((resolve, reject) => {
        const stream = (client as unknown as { Stream: () => grpc.ClientDuplexStream<Buffer, Buffer> }).Stream();
        stream.on('data', () => undefined);
        stream.on('end', resolve);
        stream.on('error', reject);
        messages.forEach((m, i) => {
          onWrite?.(m, i);
          stream.write(m);
        });
        stream.end();
      }),
    close: () => {
      client.close();
      server.forceShutdown();
    },
  };
}
