/**
 * Whether a store error means the disk (or the database's size limit) is full: SQLite's
 * SQLITE_FULL, PostgreSQL's 53100 disk_full. Such a write changed nothing, and the same write works
 * again once space is freed.
 */
export function isOutOfSpace(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const code = (error as { code?: unknown }).code;
  return code === 'SQLITE_FULL' || code === '53100';
}
