import { getTableColumns, type Table } from 'drizzle-orm';

/**
 * A row as postgres.js hands it over (column names, driver values) turned into the row drizzle
 * would have made of it, for statements drizzle does not build (a function returning a table's rows).
 */
export function rowFromDriver<T extends Table>(table: T, raw: Record<string, unknown>): T['$inferSelect'] {
  const row: Record<string, unknown> = {};
  for (const [key, column] of Object.entries(getTableColumns(table))) {
    const value = raw[column.name];
    row[key] = value === null || value === undefined ? null : column.mapFromDriverValue(value);
  }
  return row as T['$inferSelect'];
}
