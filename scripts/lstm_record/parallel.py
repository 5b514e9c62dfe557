"""Record cases in parallel worker processes.

Each case builds its own TF graphs with fixed seeds and one thread, so its
result does not depend on the process that records it or on the order: the
recording is the same with any number of jobs (`regenerate --check` holds it
to that). Workers are spawned, not forked (TensorFlow is not fork-safe); the
initializer (recorder.load) sets the environment before importing TensorFlow,
as in the parent.
"""

import concurrent.futures
import multiprocessing
import os


def default_jobs():
    """One job per CPU, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def map_cases(function, names, jobs, initializer=None):
    """Yield (name, function(name)) in the order of `names`.

    `function` and `initializer` must be module-level functions (or partials of
    them) of an importable module. With `jobs <= 1` everything runs in this
    process and `initializer` is not called (the caller has configured it).
    """
    if jobs <= 1:
        for name in names:
            yield name, function(name)
        return
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context,
                                                initializer=initializer) as pool:
        futures = [(name, pool.submit(function, name)) for name in names]
        for name, future in futures:
            yield name, future.result()
