"""The training loop both of the trainer's models share: warm-up and cosine decay, epochs over
shuffled batches with a progress bar, and the trained weights as cacheable arrays."""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm


def warmup_cosine(total_steps: int, warmup_steps: int):
    """Learning-rate factor per step: linear warm-up, then cosine decay to zero."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return factor


def run_epochs(batch_loss, opt, sched, epochs: int, n: int, batch_size: int, gen: torch.Generator, desc: str,
               progress: bool = True, after_epoch=None) -> list[float]:
    """The training loop every fine-tune here shares: per epoch a seeded permutation of ``n``
    items in batches, ``batch_loss(indices)`` then an optimiser and scheduler step, then
    ``after_epoch()`` when given (it must not touch the random generators). Returns the mean
    loss per epoch."""
    losses = []
    bar = tqdm(total=epochs * math.ceil(n / batch_size), desc=desc, disable=not progress, unit="batch")
    for _ in range(epochs):
        total = 0.0
        for batch in torch.randperm(n, generator=gen).split(batch_size):
            loss = batch_loss(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(batch)
            bar.update(1)
        losses.append(total / n)
        if after_epoch is not None:
            after_epoch()
    bar.close()
    return losses


def trained_arrays(module: nn.Module, t0: float, losses: list[float]) -> dict:
    """What the cache stores of a trained module: its state ("w/..."), seconds and losses."""
    state = {f"w/{k}": v.detach().numpy() for k, v in module.state_dict().items()}
    return {**state, "train_s": np.array(time.perf_counter() - t0), "losses": np.array(losses)}


def load_trained(module: nn.Module, found: dict) -> None:
    module.load_state_dict({k[2:]: torch.tensor(v) for k, v in found.items() if k.startswith("w/")})  # cached: read-only
