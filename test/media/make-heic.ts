import { spawn } from 'node:child_process';
import sharp from 'sharp';
import { ffmpegPath } from '../../src/services/media/video-poster.js';

/**
 * HEIC files made at test time, the way an iPhone makes them: one HEVC-coded image (encoded by
 * the ffmpeg pixshare ships, libx265) in a HEIF container, turned by an `irot` property, with an
 * EXIF item. The container is written here (ISO/IEC 23008-12: ftyp, meta with hdlr, pitm,
 * iloc, iinf, iref, iprp; mdat); nothing on the test machine writes HEIF.
 */
export async function makeHeic(options: { image: Buffer; rotation?: 0 | 1 | 2 | 3; exif?: Buffer; quality?: number }): Promise<Buffer> {
  const { width, height } = await sharp(options.image).metadata();
  const png = await sharp(options.image).png({ compressionLevel: 1 }).toBuffer();
  const nals = splitAnnexB(await encodeHevc(png, options.quality ?? 28));
  const type = (nal: Buffer) => (nal[0]! >> 1) & 0x3f;
  const [vps, sps, pps] = [32, 33, 34].map((t) => nals.find((nal) => type(nal) === t));
  if (!vps || !sps || !pps) throw new Error('x265 gave no parameter sets');
  const slices = Buffer.concat(nals.filter((nal) => type(nal) < 32).map((nal) => Buffer.concat([u32(nal.length), nal])));
  const exifItem = options.exif ? Buffer.concat([u32(6), options.exif.subarray(0, 6).toString('latin1') === 'Exif\0\0' ? options.exif : Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), options.exif])]) : null;

  const ftyp = box('ftyp', Buffer.concat([Buffer.from('heic', 'latin1'), u32(0), Buffer.from('mif1heic', 'latin1')]));
  const properties = [hvcC(vps, sps, pps), fullBox('ispe', 0, Buffer.concat([u32(width!), u32(height!)]))];
  if (options.rotation) properties.push(box('irot', Buffer.from([options.rotation])));
  const associations = Buffer.from(properties.map((_, i) => (i === 1 ? 0x00 : 0x80) | (i + 1))); // ispe is not essential
  const items = [{ id: 1, type: 'hvc1', data: slices }, ...(exifItem ? [{ id: 2, type: 'Exif', data: exifItem }] : [])];
  const meta = (dataStart: number) => {
    let offset = dataStart;
    const locations = items.map((item) => {
      const entry = Buffer.concat([u16(item.id), u16(0), u16(1), u32(offset), u32(item.data.length)]);
      offset += item.data.length;
      return entry;
    });
    return fullBox(
      'meta',
      0,
      Buffer.concat([
        fullBox('hdlr', 0, Buffer.concat([u32(0), Buffer.from('pict', 'latin1'), Buffer.alloc(12), Buffer.from([0])])),
        fullBox('pitm', 0, u16(1)),
        fullBox('iloc', 0, Buffer.concat([Buffer.from([0x44, 0x00]), u16(items.length), ...locations])),
        fullBox('iinf', 0, Buffer.concat([u16(items.length), ...items.map((item) => fullBox('infe', 2, Buffer.concat([u16(item.id), u16(0), Buffer.from(item.type, 'latin1'), Buffer.from([0])])))])),
        ...(exifItem ? [fullBox('iref', 0, box('cdsc', Buffer.concat([u16(2), u16(1), u16(1)])))] : []),
        box('iprp', Buffer.concat([box('ipco', Buffer.concat(properties)), fullBox('ipma', 0, Buffer.concat([u32(1), u16(1), Buffer.from([properties.length]), associations]))])),
      ]),
    );
  };
  // The item locations depend on the meta box's size, which does not depend on them.
  const dataStart = ftyp.length + meta(0).length + 8;
  return Buffer.concat([ftyp, meta(dataStart), box('mdat', Buffer.concat(items.map((item) => item.data)))]);
}

/** One intra frame; `crf` as x265 takes it (lower: better and larger; phones' HEICs are around 24). */
function encodeHevc(png: Buffer, crf: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const ffmpeg = ffmpegPath();
    if (!ffmpeg) return reject(new Error('no ffmpeg'));
    const child = spawn(ffmpeg, ['-v', 'error', '-f', 'png_pipe', '-i', 'pipe:0', '-frames:v', '1', '-c:v', 'libx265', '-preset', 'veryfast', '-crf', String(crf), '-x265-params', 'log-level=error', '-pix_fmt', 'yuv420p', '-f', 'hevc', 'pipe:1']);
    const out: Buffer[] = [];
    let errors = '';
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`x265 failed: ${errors}`))));
    child.stdin.end(png);
  });
}

/** NAL units of an Annex B stream (separated by 00 00 01 or 00 00 00 01 start codes). */
function splitAnnexB(stream: Buffer): Buffer[] {
  const starts: number[] = [];
  for (let i = 0; i + 2 < stream.length; i++) {
    if (stream[i] === 0 && stream[i + 1] === 0 && stream[i + 2] === 1) {
      starts.push(i + 3);
      i += 2;
    }
  }
  return starts.map((start, n) => {
    let end = n + 1 < starts.length ? starts[n + 1]! - 3 : stream.length;
    while (end > start && stream[end - 1] === 0) end--; // the extra zero of a 4-byte start code
    return stream.subarray(start, end);
  });
}

/** HEVCDecoderConfigurationRecord: profile, tier and level copied from the SPS, then the three parameter sets. */
function hvcC(vps: Buffer, sps: Buffer, pps: Buffer): Buffer {
  const profileTierLevel = sps.subarray(3, 15);
  const arrays = [vps, sps, pps].map((nal) => Buffer.concat([Buffer.from([0x80 | ((nal[0]! >> 1) & 0x3f)]), u16(1), u16(nal.length), nal]));
  return box('hvcC', Buffer.concat([Buffer.from([1]), profileTierLevel, u16(0xf000), Buffer.from([0xfc, 0xfd, 0xf8, 0xf8]), u16(0), Buffer.from([0x0f, 3]), ...arrays]));
}

function box(type: string, body: Buffer): Buffer {
  return Buffer.concat([u32(8 + body.length), Buffer.from(type, 'latin1'), body]);
}

function fullBox(type: string, version: number, body: Buffer): Buffer {
  return box(type, Buffer.concat([Buffer.from([version, 0, 0, 0]), body]));
}

function u16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(value);
  return b;
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value);
  return b;
}
