// Client-side helpers: dial a service by full name over mTLS, and unary calls as promises with
// deadlines whose failures come back as UmbraErrors (fromServiceError).
import * as grpc from '@grpc/grpc-js';
import { fromServiceError } from './grpc-status';
import { channelOptions } from './grpc-server';
import { serviceClient } from './proto';

export const DEFAULT_DEADLINE_MS = 5000;

export type GenericClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

export function dial(serviceName: string, endpoint: string, credentials: grpc.ChannelCredentials, maxReceiveBytes?: number): GenericClient {
  const Ctor = serviceClient(serviceName);
  return new Ctor(endpoint, credentials, channelOptions(maxReceiveBytes)) as unknown as GenericClient;
}

export function deadline(ms = DEFAULT_DEADLINE_MS): Date {
  return new Date(Date.now() + ms);
}

export function callUnary<Res = Record<string, unknown>>(client: GenericClient, method: string, request: unknown, deadlineMs = DEFAULT_DEADLINE_MS): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = client[method];
    if (typeof fn !== 'function') return reject(new Error(`no method ${method}`));
    fn.call(client, request, { deadline: deadline(deadlineMs) }, (err: grpc.ServiceError | null, res: Res) =>
      err ? reject(fromServiceError(err)) : resolve(res),
    );
  });
}
