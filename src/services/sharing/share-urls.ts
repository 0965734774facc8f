import type { Config } from '../../config.js';
import { AppError } from '../app-error.js';
import { isUuid } from '../ids.js';
import { sameSignature, signFields } from '../storage/signed-url.js';

/**
 * The short-lived signed URLs a share recipient's page uses (S10): each names the recipient, the
 * photo and what of it, so it reaches exactly what that recipient may see and nothing else. The
 * route checks the recipient's grant again on every request, so revoking a recipient or a share
 * stops its URLs at once; the signature only keeps anyone from making URLs up.
 */
export const SHARED_FILES_PREFIX = '/shared/';

/** thumbnail and preview: the small images; image: the photo after the share's edit rule; original: the bytes as uploaded. */
export type SharedFileKind = 'thumbnail' | 'preview' | 'image' | 'original';
const KINDS: readonly string[] = ['thumbnail', 'preview', 'image', 'original'];
const VERSION = 'pixshare-shared-file-v1';
/** Expiry times are rounded up to this step, so a page loaded twice gets the same URLs (and the browser's cache). */
const STEP_SECONDS = 600;

export interface SharedFileClaims {
  recipientId: string;
  /** An asset id, or `all` for the ZIP of the whole share. */
  target: string;
  kind: SharedFileKind | 'zip';
  /** Unix seconds. */
  expiresAt: number;
}

export class ShareUrls {
  constructor(private readonly config: Pick<Config, 'publicUrl' | 'secret' | 'sharing'>) {}

  file(recipientId: string, assetId: string, kind: SharedFileKind, nowMs = Date.now()): string {
    return this.sign({ recipientId, target: assetId, kind, expiresAt: this.expiry(nowMs) }, `${assetId}/${kind}`);
  }

  /** "Download all": the share as one ZIP. */
  zip(recipientId: string, nowMs = Date.now()): string {
    return this.sign({ recipientId, target: 'all', kind: 'zip', expiresAt: this.expiry(nowMs) }, 'download.zip');
  }

  /** What a request path and query grant; INVALID_SIGNATURE or URL_EXPIRED otherwise. Null: not one of these paths. */
  verify(url: URL, nowMs = Date.now()): SharedFileClaims | null {
    if (!url.pathname.startsWith(SHARED_FILES_PREFIX)) return null;
    const parts = url.pathname.slice(SHARED_FILES_PREFIX.length).split('/');
    const claims: Omit<SharedFileClaims, 'expiresAt'> | null =
      parts.length === 2 && parts[1] === 'download.zip'
        ? { recipientId: parts[0]!, target: 'all', kind: 'zip' }
        : parts.length === 3 && KINDS.includes(parts[2]!)
          ? { recipientId: parts[0]!, target: parts[1]!, kind: parts[2] as SharedFileKind }
          : null;
    if (!claims) return null;
    const invalid = new AppError('INVALID_SIGNATURE', 'The link is not valid');
    const exp = url.searchParams.get('exp');
    const sig = url.searchParams.get('sig');
    if (!isUuid(claims.recipientId) || (claims.target !== 'all' && !isUuid(claims.target)) || !exp || !/^\d{1,15}$/.test(exp) || !sig) throw invalid;
    const full = { ...claims, expiresAt: Number(exp) };
    if (!sameSignature(sig, this.signature(full))) throw invalid;
    if (nowMs / 1000 > full.expiresAt) throw new AppError('URL_EXPIRED', 'The link has expired; reload the share page', { expiredAt: new Date(full.expiresAt * 1000).toISOString() });
    return full;
  }

  private expiry(nowMs: number): number {
    const at = Math.floor(nowMs / 1000) + this.config.sharing.urlSeconds;
    return Math.ceil(at / STEP_SECONDS) * STEP_SECONDS;
  }

  private sign(claims: SharedFileClaims, tail: string): string {
    return `${this.config.publicUrl}${SHARED_FILES_PREFIX}${claims.recipientId}/${tail}?exp=${claims.expiresAt}&sig=${this.signature(claims)}`;
  }

  private signature(claims: SharedFileClaims): string {
    return signFields(this.config.secret, [VERSION, claims.recipientId, claims.target, claims.kind, claims.expiresAt]);
  }
}
