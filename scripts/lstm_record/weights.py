"""Seeded generators of the cases: weights, inputs and the sizes a grid draws.

All values are float32: a case stores them once as float32, the float32 run
uses them as they are, and the float64 run widens them (exactly), so both runs
see identical numbers. Weights are uniform in [-0.5, 0.5] * scale and checked to
be nonzero everywhere and different in every gate block (a constant or
repeated block could not tell a swapped gate from a right one).
"""

import numpy as np


class Generator:
    def __init__(self, seed):
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def weight(self, shape, scale=1.0, gates=None):
        """Uniform [-0.5, 0.5] * scale as float32; `gates` = number of gate blocks on the last axis."""
        values = ((self._rng.random(shape) - 0.5) * scale).astype(np.float32)
        if np.any(values == 0):
            raise AssertionError(f"seed {self.seed}: a drawn weight is exactly 0")
        if gates:
            assert_distinct_gates(values, gates)
        return values

    def uniform(self, shape, low=-1.0, high=1.0):
        """Uniform [low, high] as float32 (inputs, initial states)."""
        return self._rng.uniform(low, high, size=shape).astype(np.float32)


def assert_distinct_gates(values, gates):
    blocks = np.split(np.asarray(values), gates, axis=-1)
    for a in range(gates):
        if blocks[a].size > 1 and np.all(blocks[a] == blocks[a].flat[0]):
            raise AssertionError("a gate block is constant")
        for b in range(a + 1, gates):
            if np.array_equal(blocks[a], blocks[b]):
                raise AssertionError(f"gate blocks {a} and {b} are equal")


def grid_size(pick):
    """A size 1-64 from a grid case's option generator `pick`, mostly small: 75% 1-6, 20% 7-16, 5% 17-64."""
    r = pick.random()
    if r < 0.75:
        return int(pick.integers(1, 7))
    if r < 0.95:
        return int(pick.integers(7, 17))
    return int(pick.integers(17, 65))


def shrink_to_cap(batch, steps, width, cap):
    """(batch, steps) shrunk, the larger first, until batch * max(steps, 1) * width <= cap
    (or both are 1): keeps a grid case's folder small. Draws nothing."""
    while batch * max(steps, 1) * width > cap:
        if batch > 1 and batch >= steps:
            batch -= 1
        elif steps > 1:
            steps -= max(1, steps // 4)
        else:
            break
    return batch, steps


def assert_coverage(counts, minimums, suite):
    """A grid's option counts, checked against the minimums it promises."""
    short = {k: (counts.get(k, 0), v) for k, v in minimums.items() if counts.get(k, 0) < v}
    if short:
        raise AssertionError(f"{suite} grid coverage below the minimum (count, minimum): {short}")
    return counts
