"""What the seed notebooks (scripts/seeds/) give the cases: their shared input, and the
numbers a notebook printed (NumPy reprs in the notebook text).

Only complete printed rows are returned: a row counts when its closing `]` was
printed, so a text cut off in the middle of an array yields the rows before the cut.
"""

import re

import numpy as np

# The (2, 3, 6) input of notebooks 000-002 and 004.
NOTEBOOK_INPUT_2x3x6 = [
    [[1, 2, 3, 4, 3, 2], [1, 2, 1, 1, 1, 2], [1, 2, 2, 2, 2, 2]],
    [[1, 2, 3, 4, 3, 2], [3, 2, 2, 1, 1, 2], [0, 0, 0, 0, 3, 2]],
]
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def _rows(array_text):
    """Rows of a 2-D NumPy repr `[[a, b], [c, d]]`, complete rows only."""
    body = array_text.strip()
    if not body.startswith("[["):
        raise ValueError(f"not a 2-D array repr: {body[:40]!r}")
    rows = []
    for match in re.finditer(r"\[([^\[\]]*)\]", body[1:]):
        rows.append([float(x) for x in _NUMBER.findall(match.group(1))])
    if not rows or len({len(r) for r in rows}) != 1:
        raise ValueError("ragged or empty array repr")
    return np.array(rows, dtype=np.float64)


def _decimals(array_text):
    """The largest number of decimals printed (NumPy drops trailing zeros)."""
    return max(len(m.split(".")[1].split("e")[0]) for m in _NUMBER.findall(array_text) if "." in m)


def notebook003_printed(text):
    """TF's float32 results printed by notebook-003.

    Returns {"state/0/c": (array, decimals), "state/0/h": ..., "outputs[0]": ...}:
    the `LSTMStateTuple(c=array(...), h=array(...))` printed by `print(st)` and the
    first array of the list printed after `tf:` (`print(lstm_out)`).
    """
    state = re.search(r"LSTMStateTuple\(c=array\((\[\[.*?\]\]),.*?h=array\((\[\[.*?\]\]),", text, re.S)
    if state is None:
        raise ValueError("notebook-003: printed LSTMStateTuple not found")
    tf_part = re.search(r"^tf:\s*\n\[array\((\[\[.*?)(?:\]\]|\Z)", text, re.S | re.M)
    if tf_part is None:
        raise ValueError("notebook-003: printed TF outputs (after 'tf:') not found")
    outputs0 = tf_part.group(1) + ("]]" if tf_part.group(0).endswith("]]") else "")
    found = {}
    for key, chunk in (("state/0/c", state.group(1)), ("state/0/h", state.group(2)), ("outputs[0]", outputs0)):
        found[key] = (_rows(chunk), _decimals(chunk))
    return found
