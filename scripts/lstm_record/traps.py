"""Canary checks: prove that a recorded canary case fails a wrong implementation.

A canary case guards one known trap (a gate order, forget_bias, a clip rule,
sequence_length handling, ...). After the case is written, the recorder reads
it back and recomputes it in float64 with named wrong implementations (`wrong`:
a mutated model or inputs, permuted gate blocks, or a `trap=` of the family's
NumPy reference). Each wrong result must differ from the recorded float64
expectation by at least `MIN_MARGIN` in some output, far above any tolerance
(1e-5 and below), so a Rust implementation with that mistake visibly fails the
case.

Pure NumPy: no TensorFlow here.
"""

import copy
import itertools

import numpy as np

from . import numpy_lstm

MIN_MARGIN = 1e-2  # max |wrong - tf64| over the case's outputs must reach this


def margin(wrong, expected):
    """Largest |wrong - tf64| over the outputs both have with equal shapes (0.0 if none)."""
    worst = 0.0
    for name, pair in expected.items():
        ours = wrong.get(name)
        if ours is None or ours.shape != pair["float64"].shape or ours.size == 0:
            continue
        worst = max(worst, float(np.max(np.abs(ours - pair["float64"]))))
    return worst


def assert_traps_bite(case_dir, variants, min_margin=MIN_MARGIN):
    """Recompute the case with each (label, wrong) variant; return {label: margin}.

    `wrong(model, variables, inputs)` gets deep copies of the case's model and
    float64 arrays and returns its outputs. Raises AssertionError naming the case
    and the variant when a margin is below `min_margin`.
    """
    manifest, variables, inputs, expected = numpy_lstm.load_case(case_dir)
    if not variants:
        raise AssertionError(f"{case_dir}: a canary needs at least one wrong variant")
    margins = {}
    for label, wrong in variants:
        outputs = wrong(copy.deepcopy(manifest["model"]), {k: v.copy() for k, v in variables.items()},
                        {k: v.copy() for k, v in inputs.items()})
        margins[label] = margin(outputs, expected)
        if margins[label] < min_margin:
            raise AssertionError(f"{case_dir}: canary does not catch '{label}': "
                                 f"max |wrong - tf64| = {margins[label]:.3g} < {min_margin}")
    return margins


def wrong(expected, model_change=None, inputs_change=None, variables_change=None, trap=None):
    """A (model, variables, inputs) -> outputs variant: the changes applied, then the family's NumPy
    `expected(model, variables, inputs, trap)` (numpy_lstm.tf1_expected or block_expected)."""
    def variant(model, variables, inputs):
        if model_change:
            model_change(model)
        if inputs_change:
            inputs_change(inputs)
        if variables_change:
            variables = variables_change(model, variables)
        return expected(model, variables, inputs, trap)
    return variant


def permute_blocks(array, order):
    """Reorder the 4 gate blocks on the last axis: block k of the result is block order[k]."""
    blocks = np.split(array, 4, axis=-1)
    return np.concatenate([blocks[k] for k in order], axis=-1)


def gate_permutations():
    """All 23 orders other than the identity: reading a gate layout in any wrong order."""
    return [p for p in itertools.permutations(range(4)) if p != (0, 1, 2, 3)]


def permuted_variables(variables, names, order):
    """`variables` with the gate blocks of the named arrays reordered."""
    result = dict(variables)
    for name in names:
        result[name] = permute_blocks(variables[name], order)
    return result
