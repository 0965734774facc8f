export * from './users.js';
export * from './devices.js';
export * from './login-failures.js';
export * from './blobs.js';
export * from './assets.js';
export * from './uploads.js';
export * from './friends.js';
export * from './shares.js';
