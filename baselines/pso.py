"""A small global-best particle swarm (Kennedy & Eberhart 1995) with Clerc & Kennedy's (2002)
constriction coefficients, driven by one numpy Generator so that a seed fixes the whole search.

Why not a library: pyswarms, the PSO package on PyPI, has had no release since 1.3.0 (January 2021)
and draws from numpy's global random state, so a swarm would be seed-deterministic only by seeding
the whole process (one model's fit would then move another's random numbers).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from chrombench.errors import ChrombenchError

INERTIA = 0.7298  # Clerc & Kennedy's constriction chi for phi = 4.1
PULL = 1.49618  # chi * 2.05: the pull towards a particle's own best and towards the swarm's


class SwarmResult(NamedTuple):
    best: np.ndarray  # the best position found
    score: float  # its objective value
    trace: list[float]  # the swarm's best score after the initial swarm and after each iteration
    evaluations: int


def maximize(objective: Callable[[np.ndarray], float], lower, upper, particles: int, iterations: int,
             rng: np.random.Generator) -> SwarmResult:
    """Maximise ``objective(position)`` over the box ``[lower, upper]``: ``particles`` positions moved
    ``iterations`` times (``particles * (iterations + 1)`` evaluations). Positions are clipped to the box,
    and a particle that hits a wall stops there (its velocity along that axis is zeroed)."""
    if int(particles) < 1 or int(iterations) < 1:
        raise ChrombenchError(f"a particle swarm needs at least 1 particle and 1 iteration, got {particles} "
                              f"particles and {iterations} iterations")
    lo, hi = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    if lo.shape != hi.shape or lo.ndim != 1 or not (hi > lo).all():
        raise ChrombenchError("a particle swarm needs a box with every upper bound above its lower bound")
    span = hi - lo
    x = lo + rng.random((particles, len(lo))) * span
    v = (rng.random((particles, len(lo))) - 0.5) * span * 0.2
    scores = np.array([objective(p) for p in x])
    own, own_scores = x.copy(), scores.copy()
    lead = int(np.argmax(own_scores))
    trace = [float(own_scores[lead])]
    for _ in range(int(iterations)):
        r1, r2 = rng.random(x.shape), rng.random(x.shape)
        v = INERTIA * v + PULL * r1 * (own - x) + PULL * r2 * (own[lead] - x)
        v = np.clip(v, -span, span)
        x = x + v
        hit = (x < lo) | (x > hi)
        x, v = np.clip(x, lo, hi), np.where(hit, 0.0, v)
        scores = np.array([objective(p) for p in x])
        better = scores > own_scores
        own[better], own_scores[better] = x[better], scores[better]
        lead = int(np.argmax(own_scores))
        trace.append(float(own_scores[lead]))
    return SwarmResult(own[lead].copy(), float(own_scores[lead]), trace, particles * (int(iterations) + 1))
