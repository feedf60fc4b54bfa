"""Resident memory across repeated ``lenet_cpp.train`` calls (a leak check with numbers).

Usage: python bench/memory.py [--calls 20] [--images 4096]
Prints the RSS after every call and the growth after the first three (warm-up) calls.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import lenet_cpp
from lenet_cpp.synthetic import make_synthetic_mnist


def resident_mib() -> float:
    """Resident set size of this process (Linux /proc)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--images", type=int, default=4096)
    args = parser.parse_args()
    x, y = make_synthetic_mnist(args.images, seed=0)
    warmup = 3
    rss = []
    for _ in range(warmup + args.calls):
        lenet_cpp.train(
            x, y, 1, 0.05, momentum=0.9, threads=1, test_data=x[:1000], test_targets=y[:1000]
        )
        rss.append(resident_mib())
    print("RSS (MiB) after each call:", " ".join(f"{v:.1f}" for v in rss))
    print(
        f"growth over {args.calls} calls after {warmup} warm-up calls: "
        f"{rss[-1] - rss[warmup - 1]:+.1f} MiB"
    )


if __name__ == "__main__":
    main()
