"""Benchmark: how fast the built-in Shapes dataset generates scenes with all annotations.

Each repeat builds a fresh `Shapes` (so nothing is cached) and generates the "train" split:
images plus captions, questions, matching pairs and labels. It prints the best and the median
rate over the repeats, as wall-clock and as CPU-time examples per second (the CPU figure is less
sensitive to other processes on a shared machine). The bar is >= 2,000 examples/s at 64 px.

Usage:
    python3 benchmarks/shapes_generation.py [--num 4000] [--image-size 64] [--repeats 3]
"""

import argparse
import statistics
import time

from mmkeras.data.shapes import Shapes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=4000, help="scenes to generate per repeat")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    wall_rates, cpu_rates, setup = [], [], []
    for repeat in range(args.repeats):
        start = time.perf_counter()
        shapes = Shapes(
            image_size=args.image_size, seed=args.seed + repeat, num_train=args.num, num_val=0, num_test=0
        )
        setup.append(time.perf_counter() - start)
        wall, cpu = time.perf_counter(), time.process_time()
        scenes = shapes.scenes("train")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert len(scenes) == args.num
        wall_rates.append(args.num / wall)
        cpu_rates.append(args.num / cpu)
        print(
            f"repeat {repeat}: {args.num} scenes in {wall:.2f} s wall ({wall_rates[-1]:,.0f} examples/s), "
            f"{cpu:.2f} s CPU ({cpu_rates[-1]:,.0f} examples/s)"
        )
    print(f"setup (masks + textures): {min(setup) * 1000:.0f} ms")
    print(
        f"shapes_generation image_size={args.image_size} num={args.num}: "
        f"best {max(wall_rates):,.0f} examples/s wall (median {statistics.median(wall_rates):,.0f}), "
        f"best {max(cpu_rates):,.0f} examples/s CPU"
    )


if __name__ == "__main__":
    main()
