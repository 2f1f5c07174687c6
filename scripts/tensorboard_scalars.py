"""Prints the scalars of a TensorBoard log folder, as TensorBoard's own reader loads them.

Usage: python scripts/tensorboard_scalars.py DIR

Loads DIR (every events file in it, in name order) with
tensorboard.backend.event_processing.event_accumulator.EventAccumulator, keeping all
scalars, and prints one JSON object: {tag: [[step, value, wall_time], ...]} with each
tag's events in the order the reader keeps them. Values are the stored f32s widened to
double; NaN and +-inf are printed as the strings "nan", "inf", "-inf" (strict JSON).
"""

import json
import math
import sys

from tensorboard.backend.event_processing import event_accumulator


def number(x):
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: tensorboard_scalars.py DIR")
    acc = event_accumulator.EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
    acc.Reload()
    out = {
        tag: [[e.step, number(e.value), e.wall_time] for e in acc.Scalars(tag)]
        for tag in sorted(acc.Tags()["scalars"])
    }
    print(json.dumps(out, allow_nan=False))


if __name__ == "__main__":
    main()
