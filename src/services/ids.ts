/**
 * Whether a string is a UUID (any version) as PostgreSQL's uuid type accepts it. Ids are
 * checked before they reach SQL, so a malformed one is a clear NOT_FOUND or BAD_USER_INPUT,
 * never a database error.
 */
export function isUuid(value: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
}
