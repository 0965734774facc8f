import { z } from 'zod';

/** Validates an ID argument as a UUID, so a malformed id is BAD_USER_INPUT naming what it should be. */
export const uuidArg = (what: string) => z.coerce.string().pipe(z.uuid(`Not a valid ${what} id`));
