export * from './users.js';
export * from './devices.js';
export * from './login-failures.js';
