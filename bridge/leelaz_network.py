"""A tiny Leela Zero network with seeded random weights, for the tests and ``gamebridge demo``: Leela Zero needs a
network file to start at all, and Debian's ``leela-zero`` ships none (the real ones are downloaded separately). The
engine plays badly with it but speaks its whole GTP vocabulary (``lz-genmove_analyze`` included), searches and
passes, which is what the tests and the demo of analysis messages need.

Leela Zero's plain-text format, version 1: a line ``1``, then one line of floats per tensor: the input
convolution (18 input planes, 3x3) with its bias and batch-norm means and variances; two such 3x3 convolutions per
residual block; the policy head (1x1 convolution to 2 planes, batch norm, a fully connected layer to 362 moves) and
the value head (1x1 convolution to 1 plane, batch norm, 361 -> 256 -> 1). Leela Zero reads the channel count from
the first tensor and the number of blocks from the number of lines.

    python -m bridge.leelaz_network OUT.txt      # write one
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

INPUT_PLANES = 18
POINTS = 19 * 19


def write_network(path: Path, *, channels: int = 8, blocks: int = 1, seed: int = 1) -> Path:
    rnd = random.Random(seed)
    lines = ["1"]

    def floats(n: int, scale: float = 0.1) -> str:
        return " ".join(f"{rnd.gauss(0.0, scale):.4f}" for _ in range(n))

    def conv(inputs: int, outputs: int, size: int) -> None:
        lines.append(floats(outputs * inputs * size * size))
        lines.append(" ".join(["0"] * outputs))  # bias
        lines.append(" ".join(["0"] * outputs))  # batch-norm means
        lines.append(" ".join(["1"] * outputs))  # batch-norm variances

    conv(INPUT_PLANES, channels, 3)
    for _ in range(blocks):
        conv(channels, channels, 3)
        conv(channels, channels, 3)
    conv(channels, 2, 1)
    lines += [floats((POINTS + 1) * 2 * POINTS), floats(POINTS + 1)]
    conv(channels, 1, 1)
    lines += [floats(256 * POINTS), floats(256), floats(256), floats(1)]
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


if __name__ == "__main__":
    print(write_network(Path(sys.argv[1])))
