/** Where a request came from, recorded on the device's control-list entry (D1). */
export interface RequestOrigin {
  address: string | null;
  port: number | null;
  userAgent: string | null;
}
