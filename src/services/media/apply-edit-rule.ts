import { createHash } from 'node:crypto';
import { z } from 'zod';
import { AppError } from '../app-error.js';
import { loadInput, type MediaInput } from './derive-images.js';
import { classifySharpError, sharp, type MediaFailure, type Sharp } from './sharp-runtime.js';

/**
 * Edit rules (G3): what a share does to its photos before a recipient sees them — a maximum
 * dimension, an output format and quality, grayscale or a reduced colour palette, and which
 * metadata stays. Location and camera metadata are dropped unless the rule keeps them.
 */
const DEFAULT_QUALITY = 82;

export const editRuleSchema = z
  .object({
    /** Longest side in pixels; never enlarged. */
    maxDimension: z.number().int().min(16).max(16384).nullable().default(null),
    format: z.enum(['jpeg', 'webp', 'avif', 'png']).default('jpeg'),
    /** 1–100, for JPEG, WebP and AVIF. */
    quality: z.number().int().min(1).max(100).default(DEFAULT_QUALITY),
    grayscale: z.boolean().default(false),
    /** Reduce to this many colours (2–256): a palette PNG (format png only: the others store no palette). */
    colors: z.number().int().min(2).max(256).nullable().default(null),
    /** Keep the camera's make, model and capture time. */
    keepCamera: z.boolean().default(false),
    /** Keep every metadata field, GPS included. */
    keepLocation: z.boolean().default(false),
  })
  .strict()
  .refine((rule) => rule.colors === null || rule.format === 'png', { message: 'a reduced colour palette needs format png', path: ['colors'] });

export type EditRule = z.infer<typeof editRuleSchema>;

/** The rule in its one normal form, or BAD_USER_INPUT naming the field. */
export function parseEditRule(input: unknown): EditRule {
  const parsed = editRuleSchema.safeParse(input ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new AppError('BAD_USER_INPUT', `Edit rule: ${issue?.message ?? 'invalid'}`, { field: ['editRule', ...(issue?.path ?? [])].join('.') });
  }
  // PNG is lossless: its quality means nothing, so rules that differ only there are one rule (one image).
  return parsed.data.format === 'png' ? { ...parsed.data, quality: DEFAULT_QUALITY } : parsed.data;
}

/** A short name of the rule, the same for equal rules: derived images are stored under it. */
export function editRuleKey(rule: EditRule): string {
  const canonical = JSON.stringify(Object.keys(rule).sort().map((key) => [key, rule[key as keyof EditRule]]));
  return createHash('sha256').update(canonical).digest('base64url').slice(0, 22);
}

export const EDIT_RULE_EXTENSIONS: Record<EditRule['format'], string> = { jpeg: 'jpg', webp: 'webp', avif: 'avif', png: 'png' };

export const EDIT_RULE_MEDIA_TYPES: Record<EditRule['format'], string> = { jpeg: 'image/jpeg', webp: 'image/webp', avif: 'image/avif', png: 'image/png' };

export interface EditedImage {
  ok: true;
  data: Buffer;
  mediaType: string;
  width: number;
  height: number;
}

type EditLimits = { limitInputPixels?: number; maxInputBytes?: number };

/** What keepCamera writes into the output, from the facts stored with the blob. */
export interface CameraFacts {
  make: string | null;
  model: string | null;
  /** The wall-clock capture time, 'YYYY-MM-DDTHH:mm:ss'. */
  takenAtLocal: string | null;
}

/**
 * Applies the rule to one image (oriented first); a file that does not decode is a MediaFailure,
 * not an error. Runs inside the caller's image slot (withImageSlot, which is not re-entrant): the
 * caller decides what else waits with it (BlobService holds its database connection only then).
 */
export async function applyEditRule(input: MediaInput, rule: EditRule, limits: EditLimits = {}, camera?: CameraFacts): Promise<EditedImage | MediaFailure> {
  const loaded = await loadInput(input, limits.maxInputBytes ?? 256 * 1024 * 1024);
  if (!loaded.ok) return loaded;
  try {
    let image = sharp(loaded.source, { limitInputPixels: limits.limitInputPixels ?? 100_000_000, failOn: 'truncated' });
    image = image.autoOrient();
    if (rule.maxDimension) image = image.resize({ width: rule.maxDimension, height: rule.maxDimension, fit: 'inside', withoutEnlargement: true });
    if (rule.grayscale) image = image.grayscale();
    image = withRuleMetadata(image, rule, camera);
    switch (rule.format) {
      case 'jpeg':
        image = image.jpeg({ quality: rule.quality });
        break;
      case 'webp':
        image = image.webp({ quality: rule.quality });
        break;
      case 'avif':
        image = image.avif({ quality: rule.quality, effort: 2 });
        break;
      case 'png':
        image = image.png({ compressionLevel: 9, ...(rule.colors ? { palette: true, colours: rule.colors } : {}) });
        break;
    }
    const { data, info } = await image.timeout({ seconds: 60 }).toBuffer({ resolveWithObject: true });
    return { ok: true, data, mediaType: EDIT_RULE_MEDIA_TYPES[rule.format], width: info.width, height: info.height };
  } catch (error) {
    return classifySharpError(error, loaded.mediaType);
  }
}

/**
 * Metadata of the output: none (sharp writes none by default), all of the original's
 * (keepLocation), or the camera's make, model and capture time only (keepCamera).
 */
function withRuleMetadata(image: Sharp, rule: EditRule, camera: CameraFacts | undefined): Sharp {
  if (rule.keepLocation) return image.keepMetadata();
  if (!rule.keepCamera || !camera) return image;
  const ifd0: Record<string, string> = {};
  if (camera.make) ifd0.Make = camera.make;
  if (camera.model) ifd0.Model = camera.model;
  if (camera.takenAtLocal) ifd0.DateTime = camera.takenAtLocal.replace('T', ' ').replace(/-/g, ':').slice(0, 19);
  return Object.keys(ifd0).length > 0 ? image.withExif({ IFD0: ifd0 }) : image;
}
