/**
 * File names made from names people typed (photos, folders, shares), safe to write anywhere: in a
 * ZIP the server streams and in the folder `pixshare pull` fills. Whatever a name holds — slashes,
 * `..`, NUL, control characters, 10,000 characters — the result is one plain path component.
 */

/**
 * A file name that is safe in any unpacker: no directories, no control or reserved characters,
 * no leading dots, at most 150 characters; `extension` replaces the name's own when given.
 */
export function safeFileName(name: string, extension: string | null): string {
  let clean = name
    .normalize('NFC')
    .replace(/[\u0000-\u001f\u007f/\\:*?"<>|]/g, '_')
    .replace(/^[.\s]+/, '')
    .trim();
  if (extension) clean = `${clean.replace(/\.[^.]{1,8}$/, '') || 'photo'}.${extension}`;
  if (!clean) clean = 'file';
  if (clean.length > 150) {
    const ext = /\.[^.]{1,8}$/.exec(clean)?.[0] ?? '';
    clean = clean.slice(0, 150 - ext.length) + ext;
  }
  return clean;
}

/** "IMG_1.jpg", then "IMG_1 (2).jpg", … — case-insensitively unique, as on macOS and Windows. */
export class UniqueNames {
  private readonly taken = new Set<string>();

  take(name: string): string {
    const ext = /\.[^.]{1,8}$/.exec(name)?.[0] ?? '';
    const stem = name.slice(0, name.length - ext.length);
    for (let n = 1; ; n++) {
      const candidate = n === 1 ? name : `${stem} (${n})${ext}`;
      if (!this.taken.has(candidate.toLowerCase())) {
        this.taken.add(candidate.toLowerCase());
        return candidate;
      }
    }
  }
}
