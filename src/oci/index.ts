export * from './errors.ts';
export * from './digest.ts';
export * from './mediatypes.ts';
export * from './manifest.ts';
export * from './names.ts';
