"""The open_clip peer of `dual_encoder_train_step.py`: the bench-small CLIP train step in PyTorch.

Runs in its own virtual environment (PyTorch and open_clip are never dependencies of mmkeras);
`dual_encoder_train_step.py --peer-python VENV/bin/python` starts it and reads the JSON line it
prints last. The model is open_clip's `CLIP` with the bench-small sizes (image 128 px, patch 16,
vision width 256 x 4 layers x 4 heads, MLP 1024; text vocabulary 8,192, context 32, width 256 x
4 layers; projection 256), trained with open_clip's `ClipLoss` and `torch.optim.AdamW` on random
inputs, batch 64, in float32 and with bfloat16 autocast, each timed as the best of three rounds.

    VENV/bin/python benchmarks/peers/open_clip_train_step.py --steps 6
"""

import argparse
import json
import time


def build_step(bf16):
    import torch
    from open_clip.loss import ClipLoss
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    torch.manual_seed(0)
    model = CLIP(
        embed_dim=256,
        vision_cfg=CLIPVisionCfg(layers=4, width=256, head_width=64, mlp_ratio=4.0, patch_size=16, image_size=128),
        text_cfg=CLIPTextCfg(context_length=32, vocab_size=8192, width=256, heads=4, layers=4, mlp_ratio=4.0),
    )
    model.train()
    loss_fn = ClipLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(images, ids):
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            image_features, text_features, logit_scale = model(images, ids)
            loss = loss_fn(image_features.float(), text_features.float(), logit_scale.float())
        loss.backward()
        optimizer.step()
        return loss

    return step


def time_setting(bf16, batch, steps, rounds=3):
    import torch

    generator = torch.Generator().manual_seed(0)
    images = torch.rand((batch, 3, 128, 128), generator=generator)
    ids = torch.randint(1, 8192, (batch, 32), generator=generator)
    step = build_step(bf16)

    def seconds_per_step(count):
        start = time.perf_counter()
        losses = [step(images, ids) for _ in range(count)]
        losses[-1].item()
        return (time.perf_counter() - start) / count

    seconds_per_step(2)  # warm-up
    best = min(seconds_per_step(steps) for _ in range(rounds))
    return {"model": "open_clip", "bf16": bf16, "jit": False, "samples_per_s": round(batch / best, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--settings", default="fp32,bf16", help="comma-separated subset of fp32, bf16 (autocast)")
    args = parser.parse_args()
    results = [time_setting(name == "bf16", args.batch, args.steps) for name in args.settings.split(",")]
    print(json.dumps(results))


if __name__ == "__main__":
    main()
