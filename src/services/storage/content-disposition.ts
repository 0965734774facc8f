/**
 * `Content-Disposition: attachment` for a download name, per RFC 6266: an ASCII-only
 * `filename` for old clients plus `filename*` (RFC 8187, UTF-8) that modern browsers
 * prefer. Both drivers use it (our fs route sets the header; S3 gets it as
 * ResponseContentDisposition), so a photo downloads under the same name either way.
 */
export function attachmentDisposition(downloadName: string): string {
  // A download name is a name, not a path, and control characters have no business in a header.
  const name = downloadName.replace(/[\u0000-\u001f\u007f]/g, '').replace(/[/\\]/g, '_').trim() || 'download';
  // `%` too: some browsers percent-decode the plain filename parameter.
  const fallback = name.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  // encodeURIComponent leaves ' ( ) * ! alone; RFC 8187 attr-char allows only "!" of those.
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}
