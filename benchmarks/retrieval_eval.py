"""Benchmark: chunked retrieval metrics at 100k x 100k without the full matrix.

Runs `mmkeras.metrics.retrieval_metrics` on random L2-normalised embeddings
(each caption a noisy copy of its image, one caption per image), first on a small
gallery (checked against a brute-force NumPy full matrix), then on a large one,
and prints wall time and peak RSS (`resource.getrusage(...).ru_maxrss`). The
full float32 similarity matrix of the large run would need `N * N * 4` bytes
(40 GB at N = 100,000); the chunked evaluation needs about
`chunk_size * N * 4` bytes on top of the embeddings.

Usage:
    python3 benchmarks/retrieval_eval.py                  # 100,000 x 100,000, D=256
    python3 benchmarks/retrieval_eval.py --n 20000 --small-n 1000
"""

import argparse
import resource
import time

import numpy as np

from mmkeras.metrics import retrieval_metrics


def _current_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _random_pairs(n, dim, noise, seed):
    """Unit image embeddings and unit captions = image + noise * N(0, I) (float32 throughout)."""
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((n, dim), dtype=np.float32)
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    texts = rng.standard_normal((n, dim), dtype=np.float32)
    texts *= noise
    texts += images
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    return images, texts


def _brute_force_r1(images, texts):
    """Recall@1 from the full matrix with the same tie rule (one caption per image)."""
    scores = images @ texts.T
    diag = np.diag(scores)
    # 1 + incorrect items scoring >= the correct one (the correct one is counted by >= itself).
    i2t_rank = (scores >= diag[:, None]).sum(1)
    t2i_rank = (scores >= diag[None, :]).sum(0)
    return float(np.mean(i2t_rank <= 1)), float(np.mean(t2i_rank <= 1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="images = captions in the large run")
    parser.add_argument(
        "--small-n", type=int, default=2_000, help="images = captions in the small run"
    )
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--chunk-size", type=int, default=64)
    parser.add_argument(
        "--noise",
        type=float,
        default=4.0,
        help="norm of the noise added to an image to make its caption",
    )
    args = parser.parse_args()
    noise = args.noise / np.sqrt(
        args.dim
    )  # per-dimension std; the noise vector's norm ~ args.noise

    # Small run, checked against the brute-force full matrix.
    images, texts = _random_pairs(args.small_n, args.dim, noise, seed=0)
    start = time.perf_counter()
    small = retrieval_metrics(images, texts, np.arange(args.small_n), chunk_size=args.chunk_size)
    small_s = time.perf_counter() - start
    ref_i2t_r1, ref_t2i_r1 = _brute_force_r1(images, texts)
    print(
        f"small: N={args.small_n} D={args.dim} chunk={args.chunk_size}: {small_s:.2f} s (incl. XLA "
        f"compile); i2t_r1={small['i2t_r1']:.4f} (brute force {ref_i2t_r1:.4f}) "
        f"t2i_r1={small['t2i_r1']:.4f} (brute force {ref_t2i_r1:.4f}) "
        f"i2t_median_rank={small['i2t_median_rank']}"
    )
    if (small["i2t_r1"], small["t2i_r1"]) != (ref_i2t_r1, ref_t2i_r1):
        raise SystemExit("small run disagrees with the brute-force full matrix")
    del images, texts

    # Large run.
    images, texts = _random_pairs(args.n, args.dim, noise, seed=1)
    inputs_mb = (images.nbytes + texts.nbytes) / 2**20
    rss_before = _current_rss_mb()
    peak_before = _peak_rss_mb()
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    large = retrieval_metrics(images, texts, np.arange(args.n), chunk_size=args.chunk_size)
    large_s = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    user_s = usage.ru_utime - usage_before.ru_utime
    sys_s = usage.ru_stime - usage_before.ru_stime
    peak = _peak_rss_mb()
    full_matrix_gb = args.n * args.n * 4 / 1e9
    chunk_mb = args.chunk_size * args.n * 4 / 2**20
    print(f"large: N={args.n} images x {args.n} captions, D={args.dim}, chunk={args.chunk_size}")
    print(f"  wall time            {large_s:.1f} s  (CPU: user {user_s:.1f} s, sys {sys_s:.1f} s)")
    print(
        f"  peak RSS (process)   {peak:.0f} MB  (before the metric: current {rss_before:.0f} MB, peak {peak_before:.0f} MB)"
    )
    print(f"  inputs               {inputs_mb:.0f} MB; one score chunk {chunk_mb:.0f} MB")
    print(f"  full fp32 matrix     {full_matrix_gb:.1f} GB (never built)")
    print("  metrics", {k: round(v, 5) if isinstance(v, float) else v for k, v in large.items()})


if __name__ == "__main__":
    main()
