#!/usr/bin/env node
// A benchmark set of real photographs from Debian packages (no network beyond apt): 200 images (by default) of mixed
// sizes, JPEG and PNG, in class folders by source, made from the photographs that these packages ship:
//   apt-get install --no-install-recommends mate-backgrounds plasma-workspace-wallpapers lomiri-wallpapers-20.04 \
//     python3-skimage python3-sklearn
// There are 41 originals, so most of the 200 files are the same photograph at another size, crop and encoding (each
// file distinct in bytes and pixels). The photos are not committed (large, and under their packages' licences).
//
// Usage: node tools/make-real-photos.mjs OUT_DIR [--count N]      (tools/bench.mjs calls it for its photo section)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

const PLASMA = '/usr/share/wallpapers';
const MATE = '/usr/share/backgrounds/mate/nature';
const SKIMAGE = '/usr/lib/python3/dist-packages/skimage/data';
const SKLEARN = '/usr/lib/python3/dist-packages/sklearn/datasets/images';
/** The photographs (not drawings or renders), by class folder: the Debian package that ships them. */
export const SOURCES = {
  'mate-backgrounds': ['Aqua', 'Blinds', 'Dune', 'FreshFlower', 'Garden', 'GreenMeadow', 'LadyBird', 'RainDrops', 'Storm', 'TwoWings', 'Wood', 'YellowFlower'].map((n) => `${MATE}/${n}.jpg`),
  'plasma-workspace-wallpapers': ['BytheWater', 'ColdRipple', 'DarkestHour', 'EveningGlow', 'FallenLeaf', 'Grey', 'Kite', 'OneStandsOut', 'Path', 'summer_1am', 'ColorfulCups'].map((n) => `${PLASMA}/${n}/contents/images/2560x1600.jpg`),
  'lomiri-wallpapers': ['/usr/share/backgrounds/Infinite-Sea_by_Aury88.jpg', '/usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg'],
  'skimage-sklearn': [
    ...['astronaut.png', 'brick.png', 'camera.png', 'chelsea.png', 'coffee.png', 'coins.png', 'grass.png', 'gravel.png', 'hubble_deep_field.jpg', 'ihc.png', 'moon.png', 'motorcycle_left.png', 'retina.jpg', 'rocket.jpg'].map((n) => `${SKIMAGE}/${n}`),
    `${SKLEARN}/china.jpg`,
    `${SKLEARN}/flower.jpg`,
  ],
};
/** The Debian packages that ship SOURCES. */
export const PHOTO_PACKAGES = ['mate-backgrounds', 'plasma-workspace-wallpapers', 'lomiri-wallpapers-20.04', 'python3-skimage', 'python3-sklearn'];

/** The photographs of SOURCES that are not installed. */
export function missingPhotos() {
  return Object.values(SOURCES).flat().filter((f) => !fs.existsSync(f));
}

/** Long sides, in turn: a spread from thumbnails to camera-sized photos. */
const LONG_SIDES = [320, 480, 640, 800, 1024, 1280, 1600, 2048];

/** A deterministic uniform generator in [0, 1). */
function lcg(seed) {
  let state = seed >>> 0;
  return () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

export async function makeRealPhotos(out, count = 200) {
  const sharp = require('sharp');
  const originals = Object.entries(SOURCES).flatMap(([cls, files]) => files.map((file) => ({ cls, file })));
  const missing = missingPhotos();
  if (missing.length > 0) throw new Error(`${missing.length} photo(s) missing, e.g. ${missing[0]}: apt-get install --no-install-recommends ${PHOTO_PACKAGES.join(' ')}`);
  const rnd = lcg(2026);
  const made = { jpeg: 0, png: 0, bytes: 0 };
  for (let i = 0; i < count; i++) {
    const { cls, file } = originals[i % originals.length];
    const img = sharp(file);
    const { width, height } = await img.metadata();
    // A crop of 70-100% of each side at a random place, then the long side from LONG_SIDES (never upscaled).
    const cw = Math.max(16, Math.round(width * (0.7 + 0.3 * rnd())));
    const ch = Math.max(16, Math.round(height * (0.7 + 0.3 * rnd())));
    const left = Math.floor((width - cw) * rnd());
    const top = Math.floor((height - ch) * rnd());
    const long = Math.min(LONG_SIDES[i % LONG_SIDES.length], Math.max(cw, ch));
    const pipeline = img.extract({ left, top, width: cw, height: ch }).resize(cw >= ch ? { width: long } : { height: long });
    const png = i % 3 === 2;
    fs.mkdirSync(path.join(out, cls), { recursive: true });
    const name = path.join(out, cls, `${String(i).padStart(4, '0')}_${path.basename(file, path.extname(file))}.${png ? 'png' : 'jpg'}`);
    await (png ? pipeline.png() : pipeline.jpeg({ quality: 80 + Math.floor(rnd() * 16) })).toFile(name);
    made[png ? 'png' : 'jpeg']++;
    made.bytes += fs.statSync(name).size;
  }
  return { originals: originals.length, ...made };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2];
  if (!out) throw new Error('usage: node tools/make-real-photos.mjs OUT_DIR [--count N]');
  const i = process.argv.indexOf('--count');
  const r = await makeRealPhotos(out, i > 0 ? Number(process.argv[i + 1]) : 200);
  process.stdout.write(`${r.jpeg + r.png} images (${r.jpeg} JPEG, ${r.png} PNG, ${(r.bytes / 2 ** 20).toFixed(1)} MiB) from ${r.originals} photographs in ${out}\n`);
}
