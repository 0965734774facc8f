import { builder } from './builder.js';
import './scalars.js';
import './user.js';
import './device.js';
import './auth.js';
import './asset.js';
import './folder.js';
import './upload.js';

export const schema = builder.toSchema();
