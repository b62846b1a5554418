/**
 * Detection rates of the near-duplicate search end to end (docs/duplicates.md "Measured end to end"): originals in
 * train/, one copy per edit (resized 60%, JPEG quality 35, cropped 6% per side, brightened 25%) in test/, evaluated
 * with the defaults and the fixture model. Prints, per set, the copies found (grouped with their original), the
 * groups, and the groups that mix different pictures.
 *
 *   node --import tsx tools/measure-duplicates.ts [src-root]   (src-root: another checkout's src/, to compare)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';

const ROOT = path.resolve(__dirname, '..');
const SRC = path.resolve(process.argv[2] ?? path.join(ROOT, 'src'));
const MODEL = path.join(ROOT, 'test/fixtures/tiny-clip');

const EDITS: Record<string, (f: string) => Promise<{ data: Buffer; ext: string }>> = {
  resized: async (f) => {
    const m = await sharp(f).metadata();
    return { data: await sharp(f).resize(Math.max(1, Math.round(m.width! * 0.6)), Math.max(1, Math.round(m.height! * 0.6))).png().toBuffer(), ext: 'png' };
  },
  jpeg35: async (f) => ({ data: await sharp(f).removeAlpha().jpeg({ quality: 35 }).toBuffer(), ext: 'jpg' }),
  cropped: async (f) => {
    const m = await sharp(f).metadata();
    const dx = Math.round(m.width! * 0.06);
    const dy = Math.round(m.height! * 0.06);
    return { data: await sharp(f).extract({ left: dx, top: dy, width: m.width! - 2 * dx, height: m.height! - 2 * dy }).png().toBuffer(), ext: 'png' };
  },
  brightened: async (f) => ({ data: await sharp(f).modulate({ brightness: 1.25 }).png().toBuffer(), ext: 'png' }),
};

async function plant(originals: { file: string; cls: string }[]): Promise<{ dir: string; pairs: [string, string][] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-measure-dups-'));
  const pairs: [string, string][] = [];
  for (const { file, cls } of originals) {
    fs.mkdirSync(path.join(dir, 'train', cls), { recursive: true });
    fs.mkdirSync(path.join(dir, 'test', cls), { recursive: true });
    const base = path.basename(file);
    fs.copyFileSync(file, path.join(dir, 'train', cls, base));
    for (const [name, edit] of Object.entries(EDITS)) {
      const { data, ext } = await edit(file);
      const copy = `${name}_${base.replace(/\.\w+$/, '')}.${ext}`;
      fs.writeFileSync(path.join(dir, 'test', cls, copy), data);
      pairs.push([`train/${cls}/${base}`, `test/${cls}/${copy}`]);
    }
  }
  return { dir, pairs };
}

async function measure(name: string, originals: { file: string; cls: string }[], subject: (p: string) => string) {
  const { evaluateDataset } = await import(path.join(SRC, 'core/evaluate'));
  const { ClipModel } = await import(path.join(SRC, 'core/runtime'));
  const { dir, pairs } = await plant(originals);
  const model = await ClipModel.load(MODEL);
  try {
    const r = await evaluateDataset(dir, { model, cacheDir: null });
    const groups: { kind: string; paths: string[] }[] = r.duplicates;
    const found = pairs.filter(([o, c]) => groups.some((g) => g.paths.includes(o) && g.paths.includes(c)));
    const missed = pairs.filter((p) => !found.includes(p)).map(([, c]) => c);
    const mixed = groups.filter((g) => new Set(g.paths.map(subject)).size > 1);
    console.log(`${name}: ${found.length} of ${pairs.length} copies found; ${groups.length} groups, ${mixed.length} mixing pictures`);
    if (missed.length) console.log(`  missed: ${missed.join(', ')}`);
    for (const g of mixed) console.log(`  mixed: ${g.paths.join(', ')}`);
  } finally {
    await model.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  const example = path.join(ROOT, 'examples/shapes');
  const classes = ['blue_circle', 'green_square', 'red_star', 'yellow_triangle', 'red_circle', 'blue_star'];
  const shapes = classes.flatMap((cls) => fs.readdirSync(path.join(example, cls)).sort().slice(0, 4).map((f) => ({ file: path.join(example, cls, f), cls })));
  // A planted copy's picture is its original's; other images are their own.
  const pictureOf = (p: string) => path.basename(p).replace(/^(resized|jpeg35|cropped|brightened)_/, '').replace(/\.\w+$/, '');
  await measure('bundled example', shapes, (p) => `${p.split('/')[1]}/${pictureOf(p)}`);
  const photos = path.join(ROOT, 'test/fixtures/clip-reference/images');
  const files = fs.readdirSync(photos).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort();
  const subject = (p: string) => {
    const b = pictureOf(p);
    return /chelsea/.test(b) ? 'chelsea' : /astronaut/.test(b) && !/portrait/.test(b) ? 'astronaut' : b;
  };
  await measure('real photos', files.map((f, i) => ({ file: path.join(photos, f), cls: i % 2 ? 'a' : 'b' })), subject);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
