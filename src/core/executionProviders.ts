/**
 * Which onnxruntime-node execution providers to ask for.
 *
 * onnxruntime-node 1.30 ships CPU (and WebGPU) in its npm package. CUDA is only offered on linux/x64, and only when
 * the CUDA provider libraries were installed next to the binding (its install script fetches
 * libonnxruntime_providers_cuda.so from NuGet unless ONNXRUNTIME_NODE_INSTALL=skip / the .npmrc skips it, as this
 * repository's does). Even then the CUDA 12 runtime and cuDNN must be on the library path, which is only known when
 * a session is created: callers should catch a failing CUDA session and retry with `['cpu']`.
 */
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as path from 'node:path';

export type ProviderPreference = 'cpu' | 'cuda' | 'auto';

/** What the CUDA check looked at; injectable for tests. */
export interface CudaProbe {
  platform: string;
  arch: string;
  /** Backend names onnxruntime-node reports (listSupportedBackends), or null when the binding could not be loaded. */
  backends: string[] | null;
  /** Directory of the native binding, where libonnxruntime_providers_cuda.so must be, or null when not found. */
  bindingDir: string | null;
  fileExists: (p: string) => boolean;
}

export const CUDA_PROVIDER_LIB = 'libonnxruntime_providers_cuda.so';

/**
 * Execution providers for a preference, with a note explaining any fallback. 'cpu' is always ['cpu']; 'cuda' and
 * 'auto' give ['cuda', 'cpu'] when onnxruntime-node offers CUDA here, else ['cpu'] and a note saying why.
 */
export function executionProviders(preference: ProviderPreference, probe: CudaProbe = defaultProbe()): { providers: string[]; note?: string } {
  if (preference === 'cpu') return { providers: ['cpu'] };
  const reason = cudaUnavailableReason(probe);
  if (reason === null) return { providers: ['cuda', 'cpu'] };
  const lead = preference === 'cuda' ? 'CUDA was requested but is not available' : 'CUDA is not available';
  return { providers: ['cpu'], note: `${lead}: ${reason}; using the CPU` };
}

/** null when CUDA looks usable, else a one-line reason. */
export function cudaUnavailableReason(probe: CudaProbe): string | null {
  if (probe.platform !== 'linux' || probe.arch !== 'x64') {
    return `onnxruntime-node offers CUDA only on linux/x64, this is ${probe.platform}/${probe.arch}`;
  }
  if (probe.backends === null || probe.bindingDir === null) return 'the onnxruntime-node binding could not be loaded';
  if (!probe.backends.includes('cuda')) return `this onnxruntime-node build lists no CUDA backend (it has: ${probe.backends.join(', ')})`;
  const lib = path.join(probe.bindingDir, CUDA_PROVIDER_LIB);
  if (!probe.fileExists(lib)) {
    return `${lib} is not installed (reinstall onnxruntime-node with ONNXRUNTIME_NODE_INSTALL=cuda12 to fetch it)`;
  }
  return null;
}

/** Probe the running process: platform, the binding's backend list and the directory of its native files. */
export function defaultProbe(): CudaProbe {
  let backends: string[] | null = null;
  let bindingDir: string | null = null;
  try {
    const req = createRequire(__filename);
    const pkgJson = req.resolve('onnxruntime-node/package.json');
    bindingDir = path.join(path.dirname(pkgJson), 'bin', 'napi-v6', process.platform, process.arch);
    if (process.platform === 'linux' && process.arch === 'x64') {
      const ort = req('onnxruntime-node') as { listSupportedBackends?: () => { name: string }[] };
      backends = ort.listSupportedBackends ? ort.listSupportedBackends().map((b) => b.name) : [];
    } else backends = [];
  } catch {
    backends = null;
  }
  return { platform: process.platform, arch: process.arch, backends, bindingDir, fileExists: (p) => fs.existsSync(p) };
}
