import { builder } from './builder.js';
import './scalars.js';
import './user.js';
import './device.js';
import './auth.js';

export const schema = builder.toSchema();
