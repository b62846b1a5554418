import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import sharp from 'sharp';
import * as ort from 'onnxruntime-node';
import { ClipLensError } from '../../src/core/errors';
import {
  ImagePreprocessor,
  centreCropAxis,
  pillowResizeRegion,
  planResizeSteps,
  roundHalfEven,
  shortestEdgeSize,
} from '../../src/core/imagePreprocess';
import { parsePreprocessorConfig, readPreprocessorConfig, type PreprocessorConfig } from '../../src/core/preprocessorConfig';

const FIX = path.join(__dirname, '..', 'fixtures', 'clip-reference');
const IMAGES = path.join(FIX, 'images');
const CONFIG_FILE = path.join(FIX, 'vision', 'preprocessor_config.json');
const PLANE = 224 * 224;

interface ManifestEntry {
  file: string;
  resize_to: [number, number];
  crop_left_top: [number, number];
  decoded_size: [number, number];
  filter?: 'bicubic' | 'bilinear' | 'nearest' | 'lanczos';
}
const readJson = (file: string): unknown => JSON.parse(fs.readFileSync(file, 'utf8'));
const manifest = readJson(path.join(FIX, 'pixels', 'manifest.json')) as Record<string, ManifestEntry>;
const generated = readJson(path.join(FIX, 'pixels', 'generated-manifest.json')) as Record<string, ManifestEntry>;
const torchEmbeds = readJson(path.join(FIX, 'vision', 'image_embeds.json')) as Record<string, number[]>;

/** Plain photos, where the reference is OpenAI's transform taken literally. */
const PLAIN = ['astronaut.png', 'chelsea.png', 'rocket.jpg', 'camera.png', 'astronaut_portrait.jpg', 'moon_gray.jpg', 'cropround_229.png'];
/** The reference variant CLIP Lens matches for each special image (docs/preprocessing.md). */
const VARIANTS = ['exif6_chelsea.jpg@exif', 'alpha_chelsea.png@rgbfirst', 'palette_chelsea.png@rgbfirst', 'cmyk_chelsea.jpg@rgbfirst', 'rgb16_coffee.png@8bit'];

const configPromise = readPreprocessorConfig(CONFIG_FILE);
let session: Promise<ort.InferenceSession> | undefined;
function vision(): Promise<ort.InferenceSession> {
  session ??= ort.InferenceSession.create(path.join(FIX, 'vision', 'onnx', 'vision_model.onnx'));
  return session;
}
async function embed(pixels: Float32Array): Promise<Float32Array> {
  const s = await vision();
  const out = await s.run({ pixel_values: new ort.Tensor('float32', pixels, [1, 3, 224, 224]) });
  return out.image_embeds.data as Float32Array;
}
function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    d += (a[i] - b[i]) ** 2;
    n += b[i] ** 2;
  }
  return Math.sqrt(d / n);
}
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** The reference tensor of KEY: torch's float32 `(u8 / 255 - mean) / std` of the stored uint8 crop. */
async function referenceTensor(key: string, config: PreprocessorConfig): Promise<Float32Array> {
  const { data, info } = await sharp(path.join(FIX, 'pixels', `${key}.png`), { ignoreIcc: true }).raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.width * info.height * info.channels, PLANE * 3, `${key}: reference is not 224x224 RGB`);
  const t = new Float32Array(3 * PLANE);
  for (let c = 0; c < 3; c++) {
    const m = Math.fround(config.mean[c]);
    const s = Math.fround(config.std[c]);
    for (let i = 0; i < PLANE; i++) t[c * PLANE + i] = Math.fround(Math.fround(Math.fround(data[i * 3 + c] / 255) - m) / s);
  }
  return t;
}
function absDiff(a: Float32Array, b: Float32Array): { mean: number; max: number } {
  let s = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    s += d;
    if (d > max) max = d;
  }
  return { mean: s / a.length, max };
}

/** The test card of tools/make-upscale-reference.py, computed the same way (integer arithmetic). */
function pattern(width: number, height: number): Buffer {
  const out = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const checker = ((Math.floor(x / 37) + Math.floor(y / 37)) % 2) * 90;
      const noise = (x * 31 + y * 17 + ((x * y) % 251)) % 64;
      const stripes = x % 5 < 2 ? 50 : 0;
      const i = (y * width + x) * 3;
      out[i] = (Math.floor((x * 160) / width) + checker + noise) % 256;
      out[i + 1] = (Math.floor((y * 160) / height) + stripes + Math.floor(noise / 2)) % 256;
      out[i + 2] = (Math.floor(((x + y) * 200) / (width + height)) + Math.floor(checker / 2) + ((x * y) % 41)) % 256;
    }
  }
  return out;
}

async function rejects(promise: Promise<unknown>, code: string, file: string): Promise<ClipLensError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ClipLensError, `expected ClipLensError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.file, file);
    assert.ok(err.message.startsWith(`${file}:`), err.message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

// --- configuration ------------------------------------------------------------------------------------------------

test('reads the tiny CLIP preprocessor_config.json', async () => {
  const c = await configPromise;
  assert.deepEqual(c, {
    resizeShortestEdge: 224,
    crop: { height: 224, width: 224 },
    mean: [0.48145466, 0.4578275, 0.40821073],
    std: [0.26862954, 0.26130258, 0.27577711],
    rescaleFactor: 1 / 255,
    doNormalize: true,
    resample: 'bicubic',
  });
});

test('accepts legacy numeric sizes, defaults and the other filters', () => {
  const c = parsePreprocessorConfig({ size: 336, crop_size: 336, resample: 2, do_normalize: false, do_rescale: false }, 'p.json');
  assert.equal(c.resizeShortestEdge, 336);
  assert.deepEqual(c.crop, { height: 336, width: 336 });
  assert.equal(c.resample, 'bilinear');
  assert.equal(c.doNormalize, false);
  assert.equal(c.rescaleFactor, 1);
  const d = parsePreprocessorConfig({}, 'p.json');
  assert.equal(d.resizeShortestEdge, 224);
  assert.deepEqual(d.mean, [0.48145466, 0.4578275, 0.40821073]);
  assert.equal(parsePreprocessorConfig({ do_resize: false }, 'p.json').resizeShortestEdge, null);
  assert.equal(parsePreprocessorConfig({ resample: 1 }, 'p.json').resample, 'lanczos');
  assert.equal(parsePreprocessorConfig({ resample: 0 }, 'p.json').resample, 'nearest');
  assert.deepEqual(parsePreprocessorConfig({ image_mean: 0.5, image_std: 0.5 }, 'p.json').std, [0.5, 0.5, 0.5]);
});

test('config errors name the file and the key', () => {
  const cases: [unknown, string, string][] = [
    [{ size: -3 }, 'preprocessor-config-invalid', '"size"'],
    [{ size: { shortest_edge: 2.5 } }, 'preprocessor-config-invalid', '"size"'],
    [{ size: { height: 224, width: 224 } }, 'preprocessor-config-unsupported', '"size"'],
    [{ crop_size: { height: 224 } }, 'preprocessor-config-invalid', '"crop_size"'],
    [{ do_center_crop: false }, 'preprocessor-config-unsupported', '"do_center_crop"'],
    [{ resample: 4 }, 'preprocessor-config-unsupported', '"resample"'],
    [{ resample: 'bicubic' }, 'preprocessor-config-invalid', '"resample"'],
    [{ image_std: [0.2, 0, 0.2] }, 'preprocessor-config-invalid', '"image_std"'],
    [{ image_mean: [0.5, 0.5] }, 'preprocessor-config-invalid', '"image_mean"'],
    [{ do_normalize: 'yes' }, 'preprocessor-config-invalid', '"do_normalize"'],
    [{ rescale_factor: 0 }, 'preprocessor-config-invalid', '"rescale_factor"'],
    [[1, 2], 'preprocessor-config-invalid', 'JSON object'],
  ];
  for (const [json, code, key] of cases) {
    assert.throws(() => parsePreprocessorConfig(json, 'models/x/preprocessor_config.json'), (err: unknown) => {
      assert.ok(err instanceof ClipLensError, String(err));
      assert.equal(err.code, code, JSON.stringify(json));
      assert.equal(err.file, 'models/x/preprocessor_config.json');
      assert.ok(err.message.includes(key), err.message);
      return true;
    });
  }
});

test('readPreprocessorConfig: missing file, JSON syntax error with its line', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-pre-'));
  try {
    await rejects(readPreprocessorConfig(path.join(dir, 'nope.json')), 'preprocessor-config-missing', path.join(dir, 'nope.json'));
    const bad = path.join(dir, 'preprocessor_config.json');
    fs.writeFileSync(bad, '{\n  "size": 224,\n  "crop_size": 224,,\n}\n');
    const err = await rejects(readPreprocessorConfig(bad), 'preprocessor-config-invalid', bad);
    assert.equal(err.line, 3);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// --- geometry -----------------------------------------------------------------------------------------------------

test('roundHalfEven is Python round()', () => {
  assert.deepEqual([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, 2.4, 2.6, 3].map(roundHalfEven), [0, 2, 2, 4, 0, -2, 2, 3, 3]);
});

test('resize sizes and crop offsets reproduce every reference manifest entry', () => {
  const all = { ...manifest, ...generated };
  assert.equal(Object.keys(all).length, 19);
  for (const [key, m] of Object.entries(all)) {
    const [w, h] = m.decoded_size;
    const size = shortestEdgeSize(w, h, 224);
    assert.deepEqual([size.width, size.height], m.resize_to, key);
    assert.deepEqual([centreCropAxis(size.width, 224).src, centreCropAxis(size.height, 224).src], m.crop_left_top, key);
  }
  // 229 - 224 = 5 -> round(2.5) = 2, not 3 (the cropround image exists for this).
  assert.equal(centreCropAxis(229, 224).src, 2);
  assert.deepEqual(centreCropAxis(219, 224), { src: 0, dst: 2, len: 219 });
});

test('resize plans keep every libvips kernel step under 4x', () => {
  for (const [w, h, sol] of [[640, 427, false], [4000, 3000, false], [4000, 3000, true], [10000, 10000, true], [10000, 10000, false], [897, 1200, false], [2400, 1800, true]] as const) {
    const target = shortestEdgeSize(w, h, 224);
    const steps = planResizeSteps(w, h, target, sol);
    assert.deepEqual(steps[steps.length - 1], target);
    let cw: number = w;
    let ch: number = h;
    steps.forEach((s, i) => {
      const f = Math.max(cw / s.width, ch / s.height);
      if (sol && i === 0 && Math.min(w / target.width, h / target.height) >= 8) {
        const dct = Math.min(cw / s.width, ch / s.height) >= 16 ? 8 : 4;
        assert.ok(f / dct < 4 && f / dct >= 2, `${w}x${h} shrink-on-load step leaves ${f / dct}`);
      } else {
        assert.ok(f < 4, `${w}x${h} step ${i} reduces by ${f}`);
      }
      [cw, ch] = [s.width, s.height];
    });
  }
  assert.deepEqual(planResizeSteps(300, 224, { width: 300, height: 224 }, true), []);
  assert.equal(planResizeSteps(640, 427, { width: 335, height: 224 }, true).length, 1);
});

// --- fidelity against OpenAI CLIP ---------------------------------------------------------------------------------

test('the packed reference tensors reproduce torch embeddings (fixture sanity)', async () => {
  const config = await configPromise;
  for (const key of [...PLAIN, ...VARIANTS]) {
    const e = await embed(await referenceTensor(key, config));
    assert.ok(relL2(e, torchEmbeds[key]) < 1e-5, `${key}: ${relL2(e, torchEmbeds[key])}`);
  }
});

test('plain photos: pixels and tiny-CLIP embeddings close to OpenAI CLIP', async (t) => {
  const config = await configPromise;
  const pre = new ImagePreprocessor(config);
  const rels: number[] = [];
  for (const key of PLAIN) {
    const ours = await pre.preprocess(path.join(IMAGES, manifest[key].file));
    const { mean, max } = absDiff(ours, await referenceTensor(key, config));
    const rel = relL2(await embed(ours), torchEmbeds[key]);
    rels.push(rel);
    t.diagnostic(`${key}: pixel |diff| mean ${mean.toFixed(5)} max ${max.toFixed(4)} (x ~66 = uint8 levels); embedding rel L2 ${rel.toFixed(5)}`);
    assert.ok(mean < 0.006, `${key}: mean |diff| ${mean}`);
    assert.ok(max < 0.2, `${key}: max |diff| ${max}`);
    assert.ok(rel < 0.02, `${key}: embedding rel L2 ${rel}`);
  }
  t.diagnostic(`median embedding rel L2 ${median(rels).toFixed(5)}, max ${Math.max(...rels).toFixed(5)}`);
  assert.ok(median(rels) <= 0.005, `median ${median(rels)}`);
  assert.ok(Math.max(...rels) <= 0.1, `max ${Math.max(...rels)}`);
});

test('EXIF, alpha, palette, CMYK and 16-bit images match the variant keys CLIP Lens chose', async (t) => {
  const config = await configPromise;
  const pre = new ImagePreprocessor(config);
  for (const key of VARIANTS) {
    const ours = await pre.preprocess(path.join(IMAGES, manifest[key].file));
    const { mean, max } = absDiff(ours, await referenceTensor(key, config));
    const rel = relL2(await embed(ours), torchEmbeds[key]);
    t.diagnostic(`${key}: pixel |diff| mean ${mean.toFixed(5)} max ${max.toFixed(4)}; embedding rel L2 ${rel.toFixed(5)}`);
    assert.ok(mean < 0.006 && max < 0.2, `${key}: pixel |diff| mean ${mean} max ${max}`);
    assert.ok(rel < 0.01, `${key}: embedding rel L2 ${rel}`);
    // ... and not the literal-Pillow plain key (identical for 16-bit RGB; close for CMYK, resized in CMYK).
    const plain = key.split('@')[0];
    if (!key.endsWith('@8bit')) {
      const relPlain = relL2(await embed(ours), torchEmbeds[plain]);
      t.diagnostic(`  vs plain ${plain}: embedding rel L2 ${relPlain.toFixed(5)}`);
      assert.ok(relPlain > (key.startsWith('cmyk') ? 1 : 5) * rel, `${key}: not closer than to the plain key`);
    }
  }
});

test('upscaled images are bit-identical to Pillow for all four filters', async () => {
  const config = await configPromise;
  for (const [key, m] of Object.entries(generated)) {
    if (key.startsWith('pattern')) continue;
    const pre = new ImagePreprocessor({ ...config, resample: m.filter ?? 'bicubic' });
    const ours = await pre.preprocess(path.join(IMAGES, m.file));
    const ref = await referenceTensor(key, config);
    assert.deepEqual(absDiff(ours, ref), { mean: 0, max: 0 }, key);
  }
});

test('large images: stepped resizing stays close to Pillow (a single libvips pass would not)', async (t) => {
  const config = await configPromise;
  const [w, h] = generated.pattern_2400x1800.decoded_size;
  const raw = pattern(w, h);
  const png = await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).png({ compressionLevel: 1 }).toBuffer();
  const ref = await referenceTensor('pattern_2400x1800', config);
  const ours = await new ImagePreprocessor(config).preprocess(png);
  const stepped = absDiff(ours, ref);
  // What one libvips resize (box prefilter for >= 4x, then cubic) gives:
  const one = await sharp(png).resize(298, 224, { fit: 'fill', kernel: 'cubic' }).extract({ left: 37, top: 0, width: 224, height: 224 }).raw().toBuffer();
  const onePass = new Float32Array(3 * PLANE);
  for (let c = 0; c < 3; c++) for (let i = 0; i < PLANE; i++) onePass[c * PLANE + i] = Math.fround(Math.fround(Math.fround(one[i * 3 + c] / 255) - Math.fround(config.mean[c])) / Math.fround(config.std[c]));
  const single = absDiff(onePass, ref);
  const relOurs = relL2(await embed(ours), await embed(ref));
  t.diagnostic(`2400x1800 test card: stepped mean ${stepped.mean.toFixed(5)} max ${stepped.max.toFixed(4)} emb ${relOurs.toFixed(5)}; single pass mean ${single.mean.toFixed(5)}`);
  assert.ok(stepped.mean < 0.006, `stepped mean |diff| ${stepped.mean}`);
  assert.ok(single.mean > 3 * stepped.mean, `single pass ${single.mean} vs stepped ${stepped.mean}`);
  assert.ok(relOurs < 0.005, `embedding rel L2 ${relOurs}`);
});

/** A 2400x1800 JPEG mosaic of the fixture photos at their native resolution (a stand-in for a camera photo). */
async function photoMosaic(): Promise<Buffer> {
  const tiles = ['rocket.jpg', 'chelsea.png', 'astronaut.png', 'astronaut_portrait.jpg', 'rgb16_coffee.png'];
  const overlays: sharp.OverlayOptions[] = [];
  let k = 0;
  for (let top = 0; top < 1800; top += 300) {
    for (let left = 0; left < 2400; k++) {
      const file = path.join(IMAGES, tiles[k % tiles.length]);
      const input = await sharp(file).resize({ height: 300, width: 520, fit: 'cover' }).toColourspace('srgb').png().toBuffer();
      overlays.push({ input, left, top });
      left += 520;
    }
  }
  const canvas = sharp({ create: { width: 2400 + 520, height: 1800, channels: 3, background: '#000' } }).composite(overlays);
  const wide = await canvas.png({ compressionLevel: 1 }).toBuffer();
  return sharp(wide).extract({ left: 0, top: 0, width: 2400, height: 1800 }).jpeg({ quality: 90 }).toBuffer();
}

test('JPEG shrink-on-load for very large JPEGs stays close to a full decode', async (t) => {
  const config = await configPromise;
  const jpeg = await photoMosaic();
  const fast = new ImagePreprocessor(config);
  const full = new ImagePreprocessor(config, { jpegShrinkOnLoad: false });
  assert.notEqual(fast.fingerprint, full.fingerprint);
  const a = await fast.preprocess(jpeg);
  const b = await full.preprocess(jpeg);
  const d = absDiff(a, b);
  const rel = relL2(await embed(a), await embed(b));
  t.diagnostic(`2400x1800 photo mosaic, shrink-on-load vs full decode: mean ${d.mean.toFixed(5)} max ${d.max.toFixed(4)} emb ${rel.toFixed(5)}`);
  assert.ok(d.max > 0, 'shrink-on-load was not used');
  assert.ok(d.mean < 0.02 && rel < 0.005, `mean ${d.mean} emb ${rel}`);
});

// --- image kinds --------------------------------------------------------------------------------------------------

test('EXIF orientation is applied: the rotated phone photo comes out upright', async () => {
  const pre = new ImagePreprocessor(await configPromise);
  const upright = await pre.preprocess(path.join(IMAGES, 'chelsea.png'));
  const rotated = await pre.preprocess(path.join(IMAGES, 'exif6_chelsea.jpg'));
  const d = absDiff(rotated, upright);
  assert.ok(d.mean < 0.02, `mean |diff| ${d.mean}`); // JPEG compression only
});

test('16-bit grey is reduced by >> 8 before resizing (identical to the 8-bit image)', async () => {
  const pre = new ImagePreprocessor(await configPromise);
  const { data, info } = await sharp(path.join(IMAGES, 'camera.png')).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, 1);
  const deep = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) deep[i] = data[i] * 256 + ((i * 7) % 256); // low byte must not matter
  const png16 = await sharp(deep, { raw: { width: info.width, height: info.height, channels: 1 } }).toColourspace('grey16').png().toBuffer();
  assert.equal((await sharp(png16).metadata()).depth, 'ushort');
  const a = await pre.preprocess(png16);
  const b = await pre.preprocess(path.join(IMAGES, 'camera.png'));
  assert.deepEqual(absDiff(a, b), { mean: 0, max: 0 });
});

test('grey+alpha and transparent pixels: alpha dropped, stored colour kept', async () => {
  const pre = new ImagePreprocessor({ ...(await configPromise), resizeShortestEdge: null, crop: { height: 4, width: 4 } });
  // 4x4 grey+alpha, value 200 everywhere, fully transparent.
  const la = Buffer.alloc(4 * 4 * 2);
  for (let i = 0; i < 16; i++) la[i * 2] = 200;
  const png = await sharp(la, { raw: { width: 4, height: 4, channels: 2 } }).png().toBuffer();
  const out = await pre.preprocess(png);
  const expected = Math.fround(Math.fround(Math.fround(200 / 255) - Math.fround(0.48145466)) / Math.fround(0.26862954));
  assert.equal(out[0], expected);
  assert.equal(out[15], expected);
});

test('no resize and a crop larger than the image: zero padding as torchvision CenterCrop', async () => {
  const config = await configPromise;
  const pre = new ImagePreprocessor({ ...config, resizeShortestEdge: null, crop: { height: 40, width: 36 } });
  const out = await pre.preprocess(path.join(IMAGES, 'tiny_astronaut_32x32.png'));
  assert.equal(out.length, 3 * 40 * 36);
  const zero = Math.fround(Math.fround(0 - Math.fround(config.mean[0])) / Math.fround(config.std[0]));
  // pad left (36 - 32) // 2 = 2, top (40 - 32) // 2 = 4
  assert.equal(out[0], zero);
  assert.equal(out[4 * 36 + 1], zero);
  const { data } = await sharp(path.join(IMAGES, 'tiny_astronaut_32x32.png')).raw().toBuffer({ resolveWithObject: true });
  const first = Math.fround(Math.fround(Math.fround(data[0] / 255) - Math.fround(config.mean[0])) / Math.fround(config.std[0]));
  assert.equal(out[4 * 36 + 2], first);
  assert.equal(out[39 * 36 + 35], zero);
});

test('rescale and normalisation follow the config', async () => {
  const config = await configPromise;
  const plain = new ImagePreprocessor({ ...config, doNormalize: false });
  const norm = new ImagePreprocessor(config);
  const a = await plain.preprocess(path.join(IMAGES, 'rocket.jpg'));
  const b = await norm.preprocess(path.join(IMAGES, 'rocket.jpg'));
  for (const i of [0, 777, PLANE + 5, 2 * PLANE + 999]) {
    const c = Math.floor(i / PLANE);
    assert.ok(a[i] >= 0 && a[i] <= 1, `value ${a[i]}`);
    assert.equal(b[i], Math.fround(Math.fround(a[i] - Math.fround(config.mean[c])) / Math.fround(config.std[c])));
  }
  const raw = new ImagePreprocessor({ ...config, doNormalize: false, rescaleFactor: 1 });
  const u = await raw.preprocess(path.join(IMAGES, 'rocket.jpg'));
  assert.ok(u.every((v) => Number.isInteger(v) && v >= 0 && v <= 255), 'not uint8 levels');
  assert.ok(u.some((v) => v > 1), 'values were rescaled');
});

test('non-square crop and the pillow region resampler agree with a full resize', async () => {
  const pre = new ImagePreprocessor({ ...(await configPromise), crop: { height: 200, width: 256 } });
  assert.equal(pre.outputHeight, 200);
  assert.equal(pre.outputWidth, 256);
  assert.equal((await pre.preprocess(path.join(IMAGES, 'rocket.jpg'))).length, 3 * 200 * 256);
  // A region equals the same region of the whole result.
  const src = new Uint8Array(7 * 5 * 3).map((_, i) => (i * 37) % 256);
  const whole = pillowResizeRegion(src, 7, 5, 23, 17, { x0: 0, y0: 0, width: 23, height: 17 }, 'bicubic');
  const part = pillowResizeRegion(src, 7, 5, 23, 17, { x0: 5, y0: 3, width: 9, height: 8 }, 'bicubic');
  for (let y = 0; y < 8; y++) for (let x = 0; x < 9; x++) for (let c = 0; c < 3; c++) {
    assert.equal(part[(y * 9 + x) * 3 + c], whole[((y + 3) * 23 + x + 5) * 3 + c]);
  }
});

// --- API behaviour ------------------------------------------------------------------------------------------------

test('writes into a batch at an offset without touching the rest; Buffer input equals path input', async () => {
  const pre = new ImagePreprocessor(await configPromise);
  const n = 3 * PLANE;
  const batch = new Float32Array(2 * n + 10).fill(7);
  const view = await pre.preprocess(path.join(IMAGES, 'rocket.jpg'), batch, n + 5);
  assert.equal(view.buffer, batch.buffer);
  assert.equal(view.length, n);
  const alone = await pre.preprocess(fs.readFileSync(path.join(IMAGES, 'rocket.jpg')));
  assert.deepEqual(absDiff(batch.subarray(n + 5, 2 * n + 5), alone), { mean: 0, max: 0 });
  assert.ok(batch.subarray(0, n + 5).every((v) => v === 7), 'wrote before the offset');
  assert.ok(batch.subarray(2 * n + 5).every((v) => v === 7), 'wrote after the slot');
  await assert.rejects(pre.preprocess(path.join(IMAGES, 'rocket.jpg'), batch, n + 11), RangeError);
});

test('fingerprint is stable and changes with anything that changes the output', async () => {
  const config = await configPromise;
  const base = new ImagePreprocessor(config).fingerprint;
  assert.equal(new ImagePreprocessor({ ...config }).fingerprint, base);
  assert.equal(new ImagePreprocessor(config, { maxPixels: 1000 }).fingerprint, base);
  const variants: PreprocessorConfig[] = [
    { ...config, mean: [0.5, 0.4578275, 0.40821073] },
    { ...config, crop: { height: 224, width: 223 } },
    { ...config, resizeShortestEdge: 256 },
    { ...config, resample: 'bilinear' },
    { ...config, doNormalize: false },
    { ...config, rescaleFactor: 1 / 256 },
  ];
  const all = new Set([base, ...variants.map((c) => new ImagePreprocessor(c).fingerprint)]);
  assert.equal(all.size, variants.length + 1);
});

test('unreadable, truncated and missing images throw ClipLensError naming the file; target untouched', async () => {
  const pre = new ImagePreprocessor(await configPromise);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-img-'));
  try {
    const jpg = fs.readFileSync(path.join(IMAGES, 'rocket.jpg'));
    const truncated = path.join(dir, 'truncated.jpg');
    fs.writeFileSync(truncated, jpg.subarray(0, jpg.length >> 1));
    const target = new Float32Array(3 * PLANE).fill(3);
    const err = await rejects(pre.preprocess(truncated, target), 'image-unreadable', truncated);
    assert.match(err.message, /premature end|truncat/i);
    assert.ok(target.every((v) => v === 3), 'target written on failure');
    const png = fs.readFileSync(path.join(IMAGES, 'chelsea.png'));
    const cut = path.join(dir, 'cut.png');
    fs.writeFileSync(cut, png.subarray(0, png.length - 5000));
    await rejects(pre.preprocess(cut), 'image-unreadable', cut);
    const text = path.join(dir, 'notes.jpg');
    fs.writeFileSync(text, 'not an image');
    await rejects(pre.preprocess(text), 'image-unreadable', text);
    await rejects(pre.preprocess(path.join(dir, 'missing.png')), 'image-unreadable', path.join(dir, 'missing.png'));
    await rejects(pre.preprocess(Buffer.alloc(0)), 'image-unreadable', '<buffer>');
    await rejects(pre.preprocess(Buffer.from('garbage'), undefined, 0, 'cats/001.jpg'), 'image-unreadable', 'cats/001.jpg');
    // Nothing was written next to the images.
    assert.deepEqual(fs.readdirSync(dir).sort(), ['cut.png', 'notes.jpg', 'truncated.jpg']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

function crc32(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** A PNG whose header claims width x height but which carries only one row of data. */
function pngBomb(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.writeUInt8(8, 8); // bit depth
  ihdr.writeUInt8(2, 9); // RGB
  const row = Buffer.alloc(1 + width * 3);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(row)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

test('decompression bombs are refused from the header by the pixel limit', async () => {
  const pre = new ImagePreprocessor(await configPromise);
  const bomb = pngBomb(20000, 20000); // 400 MP claimed, about 1 KB of file
  assert.ok(bomb.length < 2000, `bomb is ${bomb.length} bytes`);
  const err = await rejects(pre.preprocess(bomb, undefined, 0, 'bomb.png'), 'image-too-large', 'bomb.png');
  assert.match(err.message, /20000x20000/);
  const small = new ImagePreprocessor(await configPromise, { maxPixels: 640 * 427 - 1 });
  await rejects(small.preprocess(path.join(IMAGES, 'rocket.jpg')), 'image-too-large', path.join(IMAGES, 'rocket.jpg'));
  const exact = new ImagePreprocessor(await configPromise, { maxPixels: 640 * 427 });
  assert.equal((await exact.preprocess(path.join(IMAGES, 'rocket.jpg'))).length, 3 * PLANE);
});

test('the constructor rejects configs without a fixed output size', async () => {
  const config = await configPromise;
  assert.throws(() => new ImagePreprocessor({ ...config, crop: null }), (e: unknown) => e instanceof ClipLensError && e.code === 'preprocessor-config-unsupported');
  assert.throws(() => new ImagePreprocessor({ ...config, std: [1, 0, 1] }), ClipLensError);
  assert.throws(() => new ImagePreprocessor(config, { maxPixels: 0 }), RangeError);
});
