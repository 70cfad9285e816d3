// Loads the wire contract (every .proto under proto/) in exactly one place, with one option set.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** proto/ at the package root, from src (shared/) or compiled (dist/shared/) code. */
export const PROTO_ROOT = [path.join(__dirname, '..', 'proto'), path.join(__dirname, '..', '..', 'proto')].find((p) => {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}) as string;

export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

function protoFiles(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = path.posix.join(rel, entry.name);
    if (entry.isDirectory()) out.push(...protoFiles(dir, r));
    else if (entry.name.endsWith('.proto')) out.push(r);
  }
  return out.sort();
}

let cached: { definition: protoLoader.PackageDefinition; grpcObject: grpc.GrpcObject } | undefined;

function load() {
  if (!cached) {
    const definition = protoLoader.loadSync(protoFiles(PROTO_ROOT), PROTO_LOADER_OPTIONS);
    cached = { definition, grpcObject: grpc.loadPackageDefinition(definition) };
  }
  return cached;
}

/** The package definition of every proto file (for reflection). */
export function packageDefinition(): protoLoader.PackageDefinition {
  return load().definition;
}

/** A service constructor by full name, e.g. `umbra.coordinator.v1.CoordinatorService`. */
export function serviceClient(fullName: string): grpc.ServiceClientConstructor {
  let node: unknown = load().grpcObject;
  for (const part of fullName.split('.')) node = (node as Record<string, unknown>)?.[part];
  if (typeof node !== 'function') throw new Error(`proto service ${fullName} is not defined under ${PROTO_ROOT}`);
  return node as grpc.ServiceClientConstructor;
}

/** The service definition to pass to `server.addService`. */
export function serviceDefinition(fullName: string): grpc.ServiceDefinition {
  return serviceClient(fullName).service;
}

/** proto-loader's entry for a message type: its descriptor and its codec over the shared protobufjs type. */
interface MessageTypeEntry {
  format?: string;
  type?: { field?: Array<{ type?: string; typeName?: string }> };
  serialize?: (value: object) => Buffer;
  deserialize?: (bytes: Buffer) => unknown;
}

const MESSAGE_FORMAT = 'Protocol Buffer 3 DescriptorProto';

/** The full name of message `typeName` as referenced from `from` (a message or service full name). */
function resolveTypeName(defs: Record<string, unknown>, from: string, typeName: string): string | undefined {
  const scopes = from.split('.');
  // Innermost scope first, as protobuf resolves names; then the name as written (fully qualified).
  for (let i = scopes.length; i >= 0; i--) {
    const candidate = [...scopes.slice(0, i), typeName].join('.');
    if ((defs[candidate] as MessageTypeEntry | undefined)?.format === MESSAGE_FORMAT) return candidate;
  }
  return undefined;
}

/** Every message type the methods of `services` carry, nested fields included. */
function messageTypesOf(defs: Record<string, unknown>, services: string[]): Set<string> {
  const found = new Set<string>();
  const todo: string[] = [];
  const add = (name: string | undefined) => {
    if (name && !found.has(name)) {
      found.add(name);
      todo.push(name);
    }
  };
  for (const service of services) {
    const methods = defs[service] as Record<string, { requestType?: { type?: { name?: string } }; responseType?: { type?: { name?: string } } }> | undefined;
    if (!methods) throw new Error(`proto service ${service} is not defined under ${PROTO_ROOT}`);
    for (const m of Object.values(methods)) {
      for (const t of [m.requestType, m.responseType]) if (t?.type?.name) add(resolveTypeName(defs, service, t.type.name));
    }
  }
  while (todo.length > 0) {
    const name = todo.pop()!;
    for (const f of (defs[name] as MessageTypeEntry).type?.field ?? []) if (f.type === 'TYPE_MESSAGE' && f.typeName) add(resolveTypeName(defs, name, f.typeName));
  }
  return found;
}

/**
 * Builds the encoders and decoders of the messages `services` carry (every message type when
 * omitted) now, returning their names: protobufjs generates a type's code on its first use, so the
 * first call of each RPC paid it, and a VM switchover is the first use of most of its messages in
 * an agent's life (measured: 4 ms of code generation in the destination agent in the 150 ms after
 * the guest resumed). The service methods' serializers share these types. All 156 types cost
 * about 70 ms once and 1.8 MiB of heap, hence the choice of services.
 */
export function warmUpMessageCodecs(services?: string[]): string[] {
  const defs = load().definition as Record<string, unknown>;
  const warmed: string[] = [];
  for (const name of services ? messageTypesOf(defs, services) : Object.keys(defs)) {
    const entry = defs[name] as MessageTypeEntry;
    if (entry.format !== MESSAGE_FORMAT || !entry.serialize || !entry.deserialize) continue;
    entry.deserialize(entry.serialize({}));
    warmed.push(name);
  }
  return warmed.sort();
}
