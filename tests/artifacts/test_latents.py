"""The user's latents (.npy): checked from the header before any memory is given to the data, and
finite once in float32 (what the generator gets), so no inf reaches an image or a latents.npy."""

import io

import numpy as np
import pytest
import torch

from direction_finder.artifacts.latents import read_latents, write_latents
from direction_finder.errors import UsageError


def npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def claiming(rows, z_dim=8):
    """A .npy whose header claims `rows` rows of float32 and holds one."""
    header = {"descr": "<f4", "fortran_order": False, "shape": (rows, z_dim)}
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + np.zeros(z_dim, np.float32).tobytes()


def test_latents_round_trip_in_float32(tmp_path):
    z = torch.randn(3, 8)
    write_latents(tmp_path / "z.npy", z)
    assert torch.equal(read_latents(tmp_path / "z.npy", 8, 10), z)
    assert torch.equal(read_latents(npy(z[0].numpy()), 8, 10), z[:1])  # one latent of shape (z_dim,)
    assert read_latents(npy(z.numpy().astype(np.float64)), 8, 10).dtype == torch.float32


@pytest.mark.parametrize("data, message", [
    (npy(np.full((2, 8), 1e300)), "within float32's range"),
    (npy(np.array([[np.inf] * 8])), "within float32's range"),
    (npy(np.full((2, 8), np.nan, np.float16)), "within float32's range"),
    (claiming(10**13), "1 <= n <= 10, got (10000000000000, 8)"),
    (claiming(5), "not a .npy array"),  # the data is shorter than the header says
    (npy(np.zeros((2, 8), np.int64)), "finite floats, got int64"),
    (npy(np.zeros((2, 8), np.complex64)), "finite floats, got complex64"),
    (npy(np.zeros((2, 3), np.float32)), "shape (n, 8)"),
    (b"PK\x03\x04 zipped", "several arrays (.npz)"),
    (b"\x93NUMPY\x03\x00", "not a .npy array"),
    (b"not an array", "not a .npy array"),
])
def test_bad_latents_are_one_clear_error(data, message):
    with pytest.raises(UsageError) as caught:
        read_latents(data, 8, 10)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_file_claiming_absurd_rows_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.npy"
    path.write_bytes(claiming(10**13))
    with pytest.raises(UsageError, match="got \\(10000000000000, 8\\)"):
        read_latents(path, 8, 1024)
    with pytest.raises(UsageError, match="does not exist"):
        read_latents(tmp_path / "missing.npy", 8, 1024)
