"""Where a profiled process spends its CPU: a py-spy raw recording summarised by package and by function.

Usage:  .venv/bin/python bench/pyspy_summary.py RECORDING.txt [--top 30]
A recording comes from `py-spy record --format raw` (bench/side_by_side.py --profile-web makes one of
Loupe's gunicorn workers under load). Idle samples are not recorded by py-spy, so the shares are of CPU.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def _package(frame: str) -> str:
    """'function (path/to/file.py:line)' -> the installed package, the stdlib module or the Loupe app."""
    path = frame.rsplit(" (", 1)[-1].split(":")[0]
    if "site-packages/" in path:
        return path.split("site-packages/")[1].split("/")[0]
    if "/lib/python3" in path:
        return "stdlib:" + path.split("/lib/python3")[1].split("/")[1].removesuffix(".py")
    parts = path.split("/")
    return "loupe:" + parts[-2] if len(parts) >= 2 else path


def _function(frame: str) -> str:
    name, _, location = frame.rpartition(" (")
    return f"{name} ({location.split(':')[0]})"


def summary(path: Path, top: int = 30) -> dict:
    """Shares of samples: by package of the innermost frame (self), and by function anywhere on the stack."""
    by_package: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        frames = [f for f in stack.split(";") if " (" in f]
        if not frames:
            continue
        total += samples
        by_package[_package(frames[-1])] += samples
        for function in {_function(f) for f in frames}:
            by_function[function] += samples
    share = lambda n: round(100 * n / max(1, total), 1)  # noqa: E731
    return {
        "samples": total,
        "self_by_package_pct": {k: share(v) for k, v in by_package.most_common(top)},
        "inclusive_by_function_pct": {k: share(v) for k, v in by_function.most_common(top)},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("recording", type=Path)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    result = summary(args.recording, args.top)
    print(f"{result['samples']} samples")
    print("self time by package (%):")
    for name, pct in result["self_by_package_pct"].items():
        print(f"  {pct:5.1f}  {name}")
    print("on the stack, by function (%):")
    for name, pct in result["inclusive_by_function_pct"].items():
        print(f"  {pct:5.1f}  {name}")


if __name__ == "__main__":
    main()
