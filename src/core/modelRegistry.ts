/**
 * Known models that `clip-lens model download <id>` can fetch, and `resolveModelSpec`, which turns what the user
 * typed (`--model clip-vit-base-patch32`, `--model ./my-model`) into a registry entry or a directory.
 *
 * Every entry is a Hugging Face repository with the transformers.js layout (see modelDir.ts). Where the revision is
 * a commit hash the files are immutable; where it is 'main' the first download records the commit it got (from the
 * `X-Repo-Commit` response header) and the SHA-256 of every file in the cache's pin file, and later downloads use
 * those (see modelDownload.ts). SHA-256 values below were read from the Hugging Face "Git LFS details" of the file
 * at that revision; `null` means "not known in advance: recorded on first download and pinned".
 *
 * Families considered and left out: SigLIP (Xenova/siglip-*) has ONNX exports, but its text graph outputs
 * `pooler_output` from 64-token inputs and it scores with a sigmoid and a logit bias, not CLIP's softmax over
 * `text_embeds`/`image_embeds`, so it does not fit this interface.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ClipLensError } from './errors';

/** One file of a registry model, at the same relative path in the repository and in the model directory. */
export interface RegistryFile {
  /** POSIX path inside the repository and inside the model directory. */
  path: string;
  /** Exact size in bytes when known, else null. */
  size: number | null;
  /** Lowercase hex SHA-256 when known in advance, else null (recorded on first download and pinned). */
  sha256: string | null;
  /** A file the model works without (a 404 for it is not an error). */
  optional?: boolean;
}

export interface RegistryEntry {
  /** Registry id, e.g. 'clip-vit-base-patch32' or 'clip-vit-base-patch32-quantized'. */
  id: string;
  family: 'clip' | 'mobileclip';
  /** Hugging Face repository, 'owner/name'. */
  repo: string;
  /** Commit hash (40 hex digits) or a branch name ('main': the resolved commit is pinned on first download). */
  revision: string;
  /** True when the entry uses onnx/*_quantized.onnx. */
  quantized: boolean;
  /** For a quantized entry, the id of its full-precision sibling; for a full-precision entry, its own id. */
  baseId: string;
  files: RegistryFile[];
  /** Approximate download size in bytes (from the repository listing), for display. */
  approxBytes: number;
  license: string;
  description: string;
  /** The model used when none is given. */
  isDefault: boolean;
}

const MB = 1_000_000;

const OPENAI_LICENSE = 'MIT (OpenAI CLIP weights; the model card restricts deployment uses, see openai/CLIP)';
const APPLE_LICENSE = 'Apple ML research model license ("other" on Hugging Face; see apple/ml-mobileclip LICENSE_weights_data)';

interface Spec {
  id: string;
  family: RegistryEntry['family'];
  repo: string;
  revision: string;
  license: string;
  description: string;
  /** Approximate MB of vision/text graphs: [full vision, full text, quantized vision, quantized text]. */
  mb: [number, number, number | null, number | null];
  /** Known SHA-256 of graph files at `revision`, keyed by path. */
  sha256?: Record<string, string>;
  isDefault?: boolean;
}

const SPECS: Spec[] = [
  {
    id: 'clip-vit-base-patch32',
    family: 'clip',
    repo: 'Xenova/clip-vit-base-patch32',
    revision: '4c1807b705b1d015fb032789cc4d221b23025a6f',
    license: OPENAI_LICENSE,
    description: 'OpenAI CLIP ViT-B/32, 224 px, 512-d embeddings: the fast default',
    mb: [352, 254, 89.1, 64.5],
    sha256: {
      'onnx/vision_model.onnx': 'fd6e1402a588279d1723c7534d4bcba5bc0b14b47dfab0e46f8c47b8270d7d40',
      'onnx/text_model_quantized.onnx': '73baab855d406190da9faa498cfedf65f15cf309f4cc7385b7b032e6d08e5c3a',
    },
    isDefault: true,
  },
  {
    id: 'clip-vit-base-patch16',
    family: 'clip',
    repo: 'Xenova/clip-vit-base-patch16',
    revision: 'main',
    license: OPENAI_LICENSE,
    description: 'OpenAI CLIP ViT-B/16, 224 px, 512-d: more accurate than B/32, ~4x slower on images',
    mb: [345, 254, 87.5, 64.5],
  },
  {
    id: 'clip-vit-large-patch14',
    family: 'clip',
    repo: 'Xenova/clip-vit-large-patch14',
    revision: 'main',
    license: OPENAI_LICENSE,
    description: 'OpenAI CLIP ViT-L/14, 224 px, 768-d: the most accurate, slow on CPU',
    mb: [1220, 495, 307, 125],
  },
  {
    id: 'mobileclip-b',
    family: 'mobileclip',
    repo: 'Xenova/mobileclip_b',
    revision: 'b00f8d3d3e870edb1ed93b75eb04baa86c440676',
    license: APPLE_LICENSE,
    description: 'Apple MobileCLIP-B, 224 px, 512-d (its vision graph is sensitive to quantization: no quantized entry)',
    mb: [346, 254, null, null],
    sha256: { 'onnx/vision_model.onnx': '40c0f78899bd09de6c6d337bf9b863f80a81bf9c608ee79d47218a39c7393816' },
  },
  {
    id: 'mobileclip-s2',
    family: 'mobileclip',
    repo: 'Xenova/mobileclip_s2',
    revision: 'main',
    license: APPLE_LICENSE,
    description: 'Apple MobileCLIP-S2, 256 px, 512-d: a small fast image encoder',
    mb: [143, 254, 36.7, 64.1],
  },
];

/** Small files every entry downloads (their sizes are negligible next to the graphs). */
const SMALL_FILES: { path: string; optional?: boolean }[] = [
  { path: 'config.json' },
  { path: 'preprocessor_config.json' },
  { path: 'tokenizer.json' },
  { path: 'tokenizer_config.json', optional: true },
];
const SMALL_FILES_BYTES = 2.3 * MB;

function entriesOf(spec: Spec): RegistryEntry[] {
  const make = (quantized: boolean, visionMb: number, textMb: number): RegistryEntry => {
    const suffix = quantized ? '_quantized' : '';
    const graphs = [`onnx/vision_model${suffix}.onnx`, `onnx/text_model${suffix}.onnx`];
    return {
      id: quantized ? `${spec.id}-quantized` : spec.id,
      family: spec.family,
      repo: spec.repo,
      revision: spec.revision,
      quantized,
      baseId: spec.id,
      files: [
        ...SMALL_FILES.map((f) => ({ path: f.path, size: null, sha256: null, ...(f.optional ? { optional: true } : {}) })),
        ...graphs.map((p) => ({ path: p, size: null, sha256: spec.sha256?.[p] ?? null })),
      ],
      approxBytes: Math.round((visionMb + textMb) * MB + SMALL_FILES_BYTES),
      license: spec.license,
      description: quantized ? `${spec.description} (8-bit quantized: ~4x smaller, slightly less accurate)` : spec.description,
      isDefault: !quantized && spec.isDefault === true,
    };
  };
  const out = [make(false, spec.mb[0], spec.mb[1])];
  if (spec.mb[2] !== null && spec.mb[3] !== null) out.push(make(true, spec.mb[2], spec.mb[3]));
  return out;
}

/** All registry entries, full-precision entry first then its quantized sibling, default model first. */
export const MODEL_REGISTRY: readonly RegistryEntry[] = Object.freeze(SPECS.flatMap(entriesOf));

/** The default model's entry. */
export function defaultModelEntry(): RegistryEntry {
  return MODEL_REGISTRY.find((e) => e.isDefault) as RegistryEntry;
}

/** The entry with this id (case-insensitive; 'default' is the default model), or undefined. */
export function findModelEntry(id: string): RegistryEntry | undefined {
  const key = id.trim().toLowerCase();
  if (key === 'default') return defaultModelEntry();
  return MODEL_REGISTRY.find((e) => e.id === key);
}

/** The quantized sibling of an entry (itself when already quantized), or undefined when the model has none. */
export function quantizedVariant(entry: RegistryEntry): RegistryEntry | undefined {
  if (entry.quantized) return entry;
  return MODEL_REGISTRY.find((e) => e.quantized && e.baseId === entry.id);
}

/**
 * What a model argument names: a local directory when it contains a path separator or exists (relative to
 * `baseDir`), else a registry id (a Hugging Face repo name of a registry entry, e.g. 'Xenova/clip-vit-base-patch32',
 * also works when no such directory exists). Unknown ids throw a ClipLensError listing the known ids, with a
 * did-you-mean.
 */
export function resolveModelSpec(spec: string, baseDir: string): { kind: 'registry'; entry: RegistryEntry } | { kind: 'path'; dir: string } {
  const trimmed = spec.trim();
  if (trimmed === '') throw new ClipLensError('model-unknown', `empty model name; known models: ${knownIds()}`);
  const expanded = trimmed === '~' || trimmed.startsWith('~/') ? path.join(os.homedir(), trimmed.slice(1)) : trimmed;
  const asPath = path.resolve(baseDir, expanded);
  if (fs.existsSync(asPath)) return { kind: 'path', dir: asPath };
  const byRepo = MODEL_REGISTRY.find((e) => !e.quantized && e.repo.toLowerCase() === trimmed.toLowerCase());
  if (byRepo) return { kind: 'registry', entry: byRepo };
  if (/[\\/]/.test(trimmed) || trimmed.startsWith('.') || trimmed.startsWith('~')) return { kind: 'path', dir: asPath };
  const entry = findModelEntry(trimmed);
  if (entry) return { kind: 'registry', entry };
  const guess = didYouMean(trimmed.toLowerCase());
  throw new ClipLensError(
    'model-unknown',
    `unknown model '${trimmed}'.${guess ? ` Did you mean '${guess}'?` : ''} Known models: ${knownIds()}. ` +
      'For a local model directory, pass its path (e.g. ./models/my-clip).',
  );
}

function knownIds(): string {
  return MODEL_REGISTRY.map((e) => e.id).join(', ');
}

/** The closest known id by edit distance (or a unique id containing the input), when close enough to be a typo. */
function didYouMean(input: string): string | null {
  let best: { id: string; d: number } | null = null;
  for (const e of MODEL_REGISTRY) {
    const d = editDistance(input, e.id);
    if (!best || d < best.d) best = { id: e.id, d };
  }
  if (best && best.d <= Math.max(2, Math.floor(input.length / 4))) return best.id;
  const containing = MODEL_REGISTRY.filter((e) => !e.quantized && (e.id.includes(input) || input.includes(e.id)));
  return containing.length >= 1 && input.length >= 3 ? containing[0].id : null;
}

/** Levenshtein distance. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}
