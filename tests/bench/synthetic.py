"""Timed rows whose answer is known: the latency-regime points of a design, each timed in
interleaved rounds around a chosen time, as the runner writes them (measurements and samples).

A *design* is a list of row dicts (suite, model, variant, mode, sizes, ``span_ops``,
``steps_executed``, ``work_flops``); ``time_of(row)`` gives each point's true time in seconds.
"""

import numpy as np
import pandas as pd

from bench.fits import round_times
from bench.store import SAMPLE_COLUMNS
from bench.workloads import IDENTITY
from tests.bench.test_fits import frame


def timed(design, time_of, *, noise=0.03, rounds=12, seed=0, round_noise=0.0):
    """``(measurements, samples)``: every point timed in ``rounds`` rounds with relative noise
    ``noise`` per sample, and ``round_noise`` shared by every point of a round (a machine that
    gets busier)."""
    rng = np.random.default_rng(seed)
    busy = 1 + round_noise * rng.standard_normal(rounds)
    rows, samples = [], []
    for point in design:
        times = time_of(point) * busy * (1 + noise * rng.standard_normal(rounds))
        times = np.abs(times)
        row = dict(point, regime="latency", status="ok", n_devices=1, rounds=rounds,
                   repeats=rounds, time_median_s=float(np.median(times)))  # fmt: skip
        rows.append(row)
        samples += [
            {**{k: row.get(k) for k in IDENTITY}, "repeat": r, "round": r, "time_s": t}
            for r, t in enumerate(times)
        ]
    table = pd.DataFrame(samples, columns=list(SAMPLE_COLUMNS))
    return frame(rows), table.astype({c: t for c, t in SAMPLE_COLUMNS.items()})


def judged(design, time_of, **kwargs):
    """``(measurements, rounds)``: :func:`timed`, its samples as per-round medians by case."""
    df, samples = timed(design, time_of, **kwargs)
    return df, round_times(samples)


# --- A design like the MDRNN's: two schedules over H = W, d and the width k --------------------


def grid_steps(variant, h, d):
    """Steps of a raster (H·H·d) and of a wavefront ((2H−1)·d) schedule."""
    return h * h * d if variant == "raster" else (2 * h - 1) * d


def grid_work(variant, h, d, k):
    """Work of the two schedules: the wavefront computes about twice the cells."""
    cells = h * h * d if variant == "raster" else (2 * h - 1) * h * d
    return 40.0 * k * k * cells


SIZES = [
    *((h, 2, 2) for h in (6, 8, 12, 16, 24, 32, 48, 64)),
    *((16, d, 2) for d in (1, 3, 4, 6, 8)),
    *((16, 2, k) for k in (4, 8, 16)),  # the work moves, the steps do not
]


def grid_design(variants=("raster", "wavefront"), sizes=SIZES, suite="toy", mode="forward"):
    return [
        dict(suite=suite, model="grid", variant=v, mode=mode, batch=1, depth=d, height=h,
             width=h, hidden=k, steps_executed=grid_steps(v, h, d), span_ops=grid_steps(v, h, d),
             work_flops=grid_work(v, h, d, k))
        for v in variants
        for h, d, k in sizes
    ]  # fmt: skip


def grid_time(a=0.3e-9, b=500e-9, c=20e-6, steps=grid_steps):
    """t = c + a·work + b·steps, ``steps(variant, H, d)`` the count the clock follows."""
    return lambda p: c + a * p["work_flops"] + b * steps(p["variant"], p["height"], p["depth"])


# --- PixelCNN's designs: train over d, H = W and C; three samplers at the same sizes ---------


def pixelcnn_train_design():
    """C8's points: d at 8×8, H = W at d = 2, and C at 8×8, d = 2 (span = 6·d + 26)."""
    sizes = [*((8, d, 2) for d in (1, 2, 4, 8, 16, 32, 64)),
             *((s, 2, 2) for s in (4, 6, 12, 16, 24, 32, 48, 64)),
             *((8, 2, c) for c in (4, 8, 16))]  # fmt: skip
    return [
        dict(suite="pixelcnn", model="pixelcnn", variant="masked", mode="train", batch=1,
             depth=d, height=s, width=s, kernel=3, hidden=c, span_ops=6 * d + 26,
             steps_executed=0, work_flops=30.0 * s * s * d * c * c)
        for s, d, c in sizes
    ]  # fmt: skip


def sampler_design():
    """C9's points: each sampler over H = W at d = 2, over d at 10×10 and over C; the naive
    sampler does H·W forward passes of work, the cached one one, the fixed-point one three;
    their spans: H·W·(3d + 1) for the first two, 3·(3d + 1) for the fixed-point one."""
    sizes = [*((s, 2, 4) for s in (5, 7, 10, 14, 20, 28, 40, 50)),
             *((10, d, 4) for d in (1, 4, 8, 16, 32)),
             *((10, 2, c) for c in (8, 16))]  # fmt: skip
    passes = {"naive": lambda s: s * s, "cached": lambda s: 1, "fixed-point": lambda s: 3}
    steps = {"naive": lambda s: s * s, "cached": lambda s: s * s, "fixed-point": lambda s: 3}
    return [
        dict(suite="pixelcnn", model="pixelcnn", variant=v, mode="sample", batch=1, depth=d,
             height=s, width=s, kernel=3, hidden=c, span_ops=steps[v](s) * (3 * d + 1),
             steps_executed=steps[v](s), work_flops=passes[v](s) * 20.0 * s * s * d * c * c)
        for v in ("naive", "cached", "fixed-point")
        for s, d, c in sizes
    ]  # fmt: skip


def cost(a=0.3e-9, b=500e-9, c=20e-6, count=lambda p: p["span_ops"]):
    """t = c + a·work + b·count(point)."""
    return lambda p: c + a * p["work_flops"] + b * count(p)


def mdrnn_steps(schedule, h, d):
    return {"raster": h * h * d, "wavefront": (2 * h - 1) * d, "pipelined": 2 * h + d - 2}[schedule]


def mdrnn_design(mode="forward", sizes=None):
    """The MDRNN's schedules at the same sizes (H = W, d, k); span = 7 ops per step, work: the
    raster's H·H·d cells, the wavefronts' (2H−1)·H·d (padded diagonals)."""
    sizes = sizes or [
        *((h, 2, 2) for h in (6, 8, 12, 16, 24, 32, 48, 64)),
        *((16, d, 2) for d in (1, 3, 4, 6, 8)),
        *((16, 2, k) for k in (8, 16)),
    ]
    return [
        dict(suite="mdrnn", model="mdrnn-lstm", variant=v, mode=mode, batch=1, depth=d,
             height=h, width=h, hidden=k, steps_executed=mdrnn_steps(v, h, d),
             span_ops=7 * mdrnn_steps(v, h, d),
             work_flops=40.0 * k * k * (h * h * d if v == "raster" else (2 * h - 1) * h * d))
        for v in ("raster", "wavefront", "pipelined")
        for h, d, k in sizes
    ]  # fmt: skip
