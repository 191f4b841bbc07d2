"""Place effects keyed by code: the same commune or village gets the same draw in every year's frame.

A real place's satisfaction is persistent: re-surveyed next year, a commune that was above its province stays
mostly above it. The generator draws each place effect as a persistent part, a standard normal keyed by
(seed, stream, place code, column) through a counter-based hash (splitmix64), so it does not depend on the
frame's order or on which other places the frame lists, plus a year-specific part drawn from the year's random
generator (`population.build_population`, `DesignParams.persistence` of the variance persistent).
"""

from __future__ import annotations

import zlib

import numpy as np
import polars as pl
from scipy.special import ndtri

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, elementwise on uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def code_keys(codes: pl.Series) -> np.ndarray:
    """A uint64 key per place code: the number itself for digit codes (GSO codes), else a CRC-32 of the text
    offset above any 12-digit code."""
    text = codes.cast(pl.Utf8)
    numbers = text.str.to_integer(strict=False)
    out = numbers.fill_null(0).cast(pl.UInt64).to_numpy().copy()
    for i in np.flatnonzero(numbers.is_null().to_numpy()):
        out[i] = np.uint64(10**12 + zlib.crc32(str(text[int(i)]).encode("utf-8")))
    return out


def keyed_normal(seed: int, stream: int, keys: np.ndarray, columns: int = 1) -> np.ndarray:
    """Standard normal draws (len(keys), columns), each a function of (seed, stream, key, column) only."""
    with np.errstate(over="ignore"):
        base = _mix(np.uint64(seed) * _GOLDEN + np.uint64(stream))
        k = _mix(keys.astype(np.uint64) ^ base)
        x = _mix(k[:, None] + (np.arange(columns, dtype=np.uint64)[None, :] + np.uint64(1)) * _GOLDEN)
    u = ((x >> np.uint64(11)).astype(np.float64) + 0.5) / float(2**53)
    return ndtri(u)


def place_keys(frame: pl.DataFrame, commune: str = "commune_code") -> tuple[np.ndarray, np.ndarray]:
    """Per frame village (rows of `frame`): the key of its commune's persistent effect (column `commune`: the
    commune code, or in a frame with a `psu` column the 2024 commune the village was drawn in, kept across the
    merger) and of its village's."""
    return code_keys(frame[commune]), code_keys(frame["village_code"])
