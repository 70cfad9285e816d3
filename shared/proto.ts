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
