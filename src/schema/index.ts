import { builder } from './builder.js';
import './scalars.js';
import './user.js';
import './device.js';
import './auth.js';
import './asset.js';
import './folder.js';
import './upload.js';
import './friend.js';
import './contact-group.js';
import './share.js';
import './sync.js';
import './device-command.js';
import './library-changes.js';

export const schema = builder.toSchema();
