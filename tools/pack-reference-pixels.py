#!/usr/bin/python3
"""Pack OpenAI CLIP's reference pixel tensors into small lossless PNGs for the test fixtures.

Source: /work/shared/clip-reference/pixels/KEY.f32 (raw little-endian float32, CHW 3x224x224, 600 KB each),
produced by OpenAI CLIP's `_transform(224)`, i.e. exactly `(u8 / 255 - mean) / std` in float32 of uint8 values.
Output: test/fixtures/clip-reference/pixels/KEY.png (224x224 RGB, 8-bit, the uint8 values) plus manifest.json.

For every tensor the script recovers the uint8 values, recomputes the float32 tensor the way torchvision does
(ToTensor: float32 u8 / 255; Normalize: (t - mean) / std with float32 mean/std) and refuses to write anything
unless the recomputed tensor is bit-identical to the source, so the PNG loses nothing.

Usage (needs Debian's numpy + Pillow):
    /usr/bin/python3 tools/pack-reference-pixels.py [SRC_DIR] [DST_DIR]
"""
import json
import os
import sys

import numpy as np
from PIL import Image

MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32).reshape(3, 1, 1)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32).reshape(3, 1, 1)
SIZE = 224
# Plain keys whose literal-Pillow quirk CLIP Lens deliberately does not reproduce (it matches the variant key
# instead, see docs/preprocessing.md); rgb16_coffee.png is bit-identical to rgb16_coffee.png@8bit.
SKIP = {"exif6_chelsea.jpg", "alpha_chelsea.png", "palette_chelsea.png", "cmyk_chelsea.jpg", "rgb16_coffee.png"}


def forward(u8_chw: np.ndarray) -> np.ndarray:
    """torchvision ToTensor + Normalize, in float32 as torch computes them."""
    t = u8_chw.astype(np.float32) / np.float32(255)
    return (t - MEAN) / STD


def invert(x: np.ndarray) -> np.ndarray:
    u = np.rint((x.astype(np.float64) * STD.astype(np.float64) + MEAN.astype(np.float64)) * 255.0)
    if u.min() < 0 or u.max() > 255:
        raise ValueError(f"values outside [0, 255] after inversion: {u.min()}..{u.max()}")
    return u.astype(np.uint8)


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    src = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/clip-reference/pixels"
    dst = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "test", "fixtures", "clip-reference", "pixels")
    os.makedirs(dst, exist_ok=True)
    keys = sorted(f[: -len(".f32")] for f in os.listdir(src) if f.endswith(".f32") and f[: -len(".f32")] not in SKIP)
    for key in keys:
        x = np.fromfile(os.path.join(src, key + ".f32"), dtype="<f4")
        if x.size != 3 * SIZE * SIZE:
            raise ValueError(f"{key}: expected {3 * SIZE * SIZE} floats, found {x.size}")
        x = x.reshape(3, SIZE, SIZE)
        u = invert(x)
        again = forward(u)
        if again.tobytes() != x.tobytes():
            bad = int(np.count_nonzero(again.view(np.uint32) != x.view(np.uint32)))
            raise SystemExit(f"{key}: uint8 round trip is not bit-exact ({bad} floats differ); not writing")
        out = os.path.join(dst, key + ".png")
        Image.fromarray(np.ascontiguousarray(u.transpose(1, 2, 0)), "RGB").save(out, optimize=True)
        back = np.asarray(Image.open(out).convert("RGB")).transpose(2, 0, 1)
        if not np.array_equal(back, u):
            raise SystemExit(f"{key}: PNG read-back differs")
        print(f"{key}: bit-exact, {os.path.getsize(out)} bytes")
    with open(os.path.join(src, "manifest.json")) as f:
        manifest = json.load(f)
    with open(os.path.join(dst, "manifest.json"), "w") as f:
        json.dump({k: manifest[k] for k in keys}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
