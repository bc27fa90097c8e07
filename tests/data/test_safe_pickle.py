"""The restricted unpickler: plain data in, code never run."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from pano360._core import ImageIOError
from pano360.data import DatasetFormatError, load_restricted_pickle


class _RunsCode:
    """Unpickling this with pickle.load would create the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_plain_data_and_numpy_round_trip_in_every_protocol(tmp_path, protocol):
    data = {
        "video": {"0001": [(0.25, 0.5)], "0002": np.array([[0.1, 0.9]], dtype=np.float32)},
        "numbers": [1, 2.5, 3 + 4j, True, None],
        "texts": ("a", b"\x00\xff", bytearray(b"xy"), b""),
        "sets": ({1, 2}, frozenset({"a"})),
        "scalar": np.float64(2.5),
        "ints": np.arange(6, dtype=np.int16).reshape(2, 3),
    }
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    got = load_restricted_pickle(path)
    assert got["video"]["0001"] == [(0.25, 0.5)]
    np.testing.assert_array_equal(got["video"]["0002"], data["video"]["0002"])
    assert got["video"]["0002"].dtype == np.float32
    assert got["numbers"] == data["numbers"]
    assert got["texts"] == data["texts"] and got["sets"] == data["sets"]
    assert got["scalar"] == 2.5 and isinstance(got["scalar"], np.float64)
    np.testing.assert_array_equal(got["ints"], data["ints"])


def test_a_pickle_that_would_run_code_is_refused_and_does_not_run(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "vinfo.pkl"
    path.write_bytes(pickle.dumps({"v": {"0001": [_RunsCode(marker)]}}))
    with pytest.raises(DatasetFormatError, match=r"vinfo\.pkl: refused .*'posix\.system'"):
        load_restricted_pickle(path)
    assert not marker.exists()
    # The same file does run code with pickle.load: the test would notice a weaker guard.
    pickle.loads(path.read_bytes())
    assert marker.exists()


@pytest.mark.parametrize(
    "payload",
    [
        pickle.dumps(_RunsCode("x").__class__),  # a class of this test module
        pickle.dumps(np.random.default_rng(0)),  # numpy, but not an array
        b"cbuiltins\neval\n(S'1+1'\ntR.",  # builtins beyond the containers
        b"c_codecs\nencode\n(S'x'\nS'rot13'\ntR.",  # the latin1 reconstructor, other codec
    ],
)
def test_other_globals_are_refused(tmp_path, payload):
    path = tmp_path / "a.pkl"
    path.write_bytes(payload)
    with pytest.raises(DatasetFormatError, match=r"a\.pkl: (refused|not a valid pickle)"):
        load_restricted_pickle(path)


def test_a_truncated_pickle_and_a_missing_file(tmp_path):
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickle.dumps({"a": [1, 2, 3]})[:-3])
    with pytest.raises(DatasetFormatError, match=r"cut\.pkl: not a valid pickle"):
        load_restricted_pickle(path)
    with pytest.raises(ImageIOError, match=r"cannot read .*nothing\.pkl"):
        load_restricted_pickle(tmp_path / "nothing.pkl")
