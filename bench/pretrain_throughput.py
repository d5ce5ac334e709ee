"""Tokens per second of the masked-LM pretraining step, and an estimate of model FLOP utilisation.

Builds exactly the model, optimizer, precision and compilation that ``pretraining.pretrain`` uses
for a profile (notebook 09, notebook 10's fallback, ``course experiment pretraining``), feeds it
masked batches of random token ids (throughput does not depend on the text, and the benchmark
then needs no corpus), and times ``model.fit`` over a fixed number of steps after a warm-up call
that compiles the step. Run it on the device you care about::

    python bench/pretrain_throughput.py                       # full profile (the GPU lesson)
    python bench/pretrain_throughput.py --profile quick       # the CPU profile
    KERAS_BACKEND=jax python bench/pretrain_throughput.py     # the same under JAX

Model FLOP utilisation (MFU) is the arithmetic the model needs divided by what the device could
do in the same time. The arithmetic is counted as in the notebooks and ``course_lib``
(``mlm.masked_lm_training_flops``): the encoder's matrix products for every token
(attention projections, feed-forward layers, and attention over the window itself), the
masked-LM head only at the masked positions it predicts, forward and backward (3 x forward);
embedding tables are look-ups and cost nothing. The usual shortcut, 6 x all parameters x
tokens, counts the embedding tables and the vocabulary-sized head at every token, and
overstates the work of a small model several times; it is printed beside for comparison. The
peak comes from ``--peak-tflops`` or, for a few known GPUs, from a table of dense bfloat16 /
TF32 peaks; on a CPU pass ``--peak-tflops`` to get an MFU.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

# Dense (not sparse) peak TFLOP/s: (bfloat16, TF32 / float32 tensor-core).
PEAKS = {
    "H200": (989.0, 494.0),
    "H100": (989.0, 494.0),
    "A100": (312.0, 156.0),
    "L40S": (362.0, 183.0),
    "L4": (121.0, 60.0),
    "A10": (125.0, 62.5),
    "V100": (125.0, 15.7),
    "T4": (65.0, 8.1),
}


def peak_for(gpu_name: str | None, precision: str) -> float | None:
    if not gpu_name:
        return None
    for key, (bf16, tf32) in PEAKS.items():
        if key in gpu_name.upper():
            return bf16 if "16" in precision else tf32
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=["quick", "checkpoint", "full"], default="full")
    parser.add_argument("--steps", type=int, default=50, help="timed training steps")
    parser.add_argument("--warmup-steps", type=int, default=5,
                        help="steps of the first (compiling) call, not timed")
    parser.add_argument("--batch-size", type=int, default=None, help="override the profile's")
    parser.add_argument("--seq-len", type=int, default=None, help="override the profile's")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's peak, TFLOP/s (default: table for known GPUs)")
    args = parser.parse_args(argv)

    import keras

    from course_lib import device, keras_runtime, mlm
    from course_lib.pretraining import new_encoder
    from course_lib.recipe import config

    overrides = {k: v for k, v in (("batch_size", args.batch_size), ("seq_len", args.seq_len))
                 if v is not None}
    cfg = config(args.profile, **overrides)
    precision = keras_runtime.precision_for("transformer", cfg.profile)
    jit = keras_runtime.jit_for(cfg.profile)
    gpus = device.gpus()
    where = ", ".join(g.name for g in gpus) if gpus else "CPU"

    keras_runtime.seed_all(0)
    vocab_size = cfg.vocab_size
    encoder = new_encoder(vocab_size, cfg, precision)
    model = mlm.masked_lm(encoder, vocab_size, dtype=precision)
    total = args.warmup_steps + args.steps
    mlm.compile_masked_lm(model, cfg.learning_rate, total, max(1, total // 20), jit_compile=jit)
    model.steps_per_execution = cfg.steps_per_execution

    rng = np.random.default_rng(0)
    max_pred = mlm.max_predictions_for(cfg.seq_len, cfg.mask_rate)

    def batches(n_steps):
        ids = rng.integers(3, vocab_size, size=(n_steps * cfg.batch_size, cfg.seq_len),
                           dtype=np.int32)
        inputs, targets = mlm.mask_tokens(ids, rng, 2, vocab_size, 3, rate=cfg.mask_rate)
        positions, labels = mlm.gather_targets(targets, max_pred)
        return [inputs, positions], labels

    x, y = batches(args.warmup_steps)
    start = time.perf_counter()
    model.fit(x, y, batch_size=cfg.batch_size, epochs=1, shuffle=False, verbose=0)
    compile_seconds = time.perf_counter() - start
    x, y = batches(args.steps)
    start = time.perf_counter()
    model.fit(x, y, batch_size=cfg.batch_size, epochs=1, shuffle=False, verbose=0)
    seconds = time.perf_counter() - start

    tokens = args.steps * cfg.batch_size * cfg.seq_len
    targets = int(np.count_nonzero(y))  # masked positions predicted in the timed steps
    params = int(sum(np.prod(v.shape) for v in model.trainable_weights))
    flops = mlm.masked_lm_training_flops(cfg.width, cfg.depth, cfg.ff_width, cfg.seq_len,
                                        vocab_size, tokens, targets)
    flops_naive = 6.0 * params * tokens
    peak = args.peak_tflops or peak_for(gpus[0].name if gpus else None, precision)

    print(f"device {where} | Keras {keras.__version__}, backend {keras.config.backend()} | "
          f"profile {cfg.profile} | precision {precision} | jit_compile {jit} | "
          f"steps_per_execution {cfg.steps_per_execution}")
    print(f"model: width {cfg.width}, {cfg.depth} blocks, {cfg.heads} heads, vocabulary "
          f"{vocab_size:,}; {params:,} trainable parameters")
    print(f"batch {cfg.batch_size} x {cfg.seq_len} tokens, {max_pred} prediction slots per "
          f"sequence, {targets / args.steps / cfg.batch_size:.1f} used on average")
    print(f"compile + {args.warmup_steps} warm-up steps: {compile_seconds:.1f} s")
    print(f"{args.steps} timed steps: {seconds:.2f} s, {seconds / args.steps * 1e3:.1f} ms/step, "
          f"{tokens / seconds:,.0f} tokens/s")
    print(f"model FLOPs: {flops / seconds / 1e12:.3f} TFLOP/s (matrix products as they run); "
          f"the 6 x parameters x tokens shortcut would say {flops_naive / seconds / 1e12:.3f} "
          f"({flops_naive / flops:.1f} x as much)")
    if peak:
        print(f"MFU against a peak of {peak:g} TFLOP/s: {flops / seconds / 1e12 / peak:.1%}")
    else:
        print("MFU: unknown peak for this device; pass --peak-tflops to compute it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
