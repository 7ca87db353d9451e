"""`train.precision="auto"`: bf16 where the device has bf16 units, with the compile setting fastest there."""

import functools

import tensorflow as tf

# CPU flags of bf16 matrix units that oneDNN (TensorFlow's CPU kernels) uses; XLA's CPU backend does not.
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
MIN_BF16_COMPUTE_CAPABILITY = (8, 0)  # NVIDIA Ampere and later


@functools.lru_cache(maxsize=1)
def cpu_flags():
    """The CPU feature flags of this machine (`/proc/cpuinfo`; empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def resolve_precision(precision, jit_compile=True, strategy=None, flags=None, gpus=None):
    """The dtype policy and XLA setting a run uses, and why.

    `precision` other than "auto" is kept as it is, with `jit_compile`. "auto" chooses:

    - TPU (a `TPUStrategy`): `mixed_bfloat16` with XLA (TPUs compile everything);
    - GPU of compute capability 8.0 or more (bf16 tensor cores): `mixed_bfloat16`, `jit_compile`
      as configured; an older GPU: `float32`;
    - CPU with AVX512_BF16 or AMX: `mixed_bfloat16` without XLA: TensorFlow's oneDNN kernels run bf16
      matrix products on those units and XLA's CPU backend does not, so bf16 with XLA is slower than
      float32 with XLA there (see `benchmarks/dual_encoder_train_step.py`); other CPUs: `float32`.

    Args:
        precision: "auto", "float32", "mixed_bfloat16" or "mixed_float16".
        jit_compile: the configured `train.jit_compile`.
        strategy: the run's `tf.distribute` strategy (None: look at the local devices).
        flags: CPU flags (default: this machine's, `cpu_flags()`).
        gpus: `[(name, (major, minor))]` of the GPUs (default: the visible ones).

    Returns:
        `(policy, jit_compile, reason)`.

    Example:

    >>> resolve_precision("auto", gpus=[], flags={"avx512f", "avx512_bf16"})[:2]
    ('mixed_bfloat16', False)
    >>> resolve_precision("auto", gpus=[], flags={"avx2"})[:2]
    ('float32', True)
    >>> resolve_precision("auto", gpus=[("A100", (8, 0))])[:2], resolve_precision("auto", gpus=[("T4", (7, 5))])[0]
    (('mixed_bfloat16', True), 'float32')
    >>> resolve_precision("float32", jit_compile=False)
    ('float32', False, 'set by `train.precision`')
    """
    if precision != "auto":
        return precision, jit_compile, "set by `train.precision`"
    if strategy is not None and isinstance(strategy, tf.distribute.TPUStrategy):
        return "mixed_bfloat16", True, "TPU: bf16 matrix units, XLA-compiled"
    gpus = _visible_gpus() if gpus is None else gpus
    if gpus:
        name, capability = gpus[0]
        described = f"GPU {name} (compute capability {capability[0]}.{capability[1]})"
        if tuple(capability) >= MIN_BF16_COMPUTE_CAPABILITY:
            return "mixed_bfloat16", jit_compile, f"{described}: bf16 tensor cores"
        return "float32", jit_compile, f"{described} has no bf16 units"
    flags = cpu_flags() if flags is None else flags
    found = [flag for flag in CPU_BF16_FLAGS if flag in flags]
    if found:
        return "mixed_bfloat16", False, (f"CPU with {found[0].upper()}: oneDNN uses its bf16 units, XLA does not, so "
                                         "bf16 runs without XLA")
    return "float32", jit_compile, "CPU without bf16 units (no AVX512_BF16 or AMX)"


def _visible_gpus():
    gpus = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        gpus.append((details.get("device_name", device.name), details.get("compute_capability", (0, 0))))
    return gpus
