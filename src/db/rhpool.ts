// rhpool's SQL functions as TypeScript calls: one typed function per rhpool
// function the product calls, taking the pool (or a transaction) and typed
// arguments. The casts from postgres.js's untyped rows are made in these
// modules only (see rhpool-query.ts); callers get plain typed values.
export * from './rhpool-dispatch.ts'
export * from './rhpool-presence.ts'
export * from './rhpool-callbacks.ts'
export * from './rhpool-maintenance.ts'
export * from './rhpool-status.ts'
