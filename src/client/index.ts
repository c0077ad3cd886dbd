/** The registry client: transport, authentication, credential sources, quota headers and operations. */
export * from './transport.ts';
export * from './auth.ts';
export * from './credentials.ts';
export * from './ratelimit.ts';
export * from './errors.ts';
export * from './verify.ts';
export * from './registry-client.ts';
