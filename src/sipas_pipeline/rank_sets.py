"""Confidence sets for ranks with guaranteed coverage (Mogstad, Romano, Shaikh and Wilhelm, *Review of Economic
Studies* 2024, "Inference for ranks with applications to mobility across neighbourhoods and academic achievement
across countries"; the method of the R package `csranks`, written again here).

Rank 1 is the highest value. The rank of unit j is 1 + #{k : theta_k > theta_j}. A set for it comes from
simultaneous confidence intervals for the differences theta_a - theta_b: a pair whose interval excludes 0 is
"surely ordered". The lower end of j's set is 1 + the units surely above j, the upper end K - the units surely
below j. The intervals are one-sided lower bounds d_ab - q se_ab > 0 tested over a family of ordered pairs (a, b),
with q the `level` quantile of max over the family of the studentised errors T_ab = (e_a - e_b) / se_ab:

- marginal set of j: the family {(j, k), (k, j) : k != j} (covers j's rank with probability `level`);
- simultaneous set: every ordered pair (covers every unit's rank at once);
- "the top tau" set: the units whose simultaneous lower end is <= tau (the projection of the simultaneous set,
  csranks' `cstaubest`: for all units its one-sided family is every ordered pair, the same as here); "the bottom
  tau": the units whose simultaneous upper end is >= K - tau + 1. Each contains every true top (bottom) tau unit
  with probability >= `level`.

Stepdown (Romano and Wolf 2005): pairs found ordered leave the family and q is taken again over the rest, until
nothing new is rejected; the sets only shrink and keep their coverage.

The critical value comes from a parametric bootstrap of the estimates' errors. csranks draws them from N(0,
Sigma-hat), right when the variances are known. Here each base unit's variance is itself estimated with few
degrees of freedom (a province: about three PSUs per stratum, df 1-5), so the draw is studentised: the error
e = A z with z_b ~ N(0, v_b), and the variance the survey would have estimated in that draw v_b chi2(df_b) / df_b;
T_ab divides the drawn difference by its drawn standard error. With df = inf this is csranks' Gaussian bootstrap.
`loadings` A (units x base units) lets a unit be a linear combination of independent base units (a region = the
mean of its provinces), so the covariance of the units, A diag(v) A', is counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RankSets:
    """Confidence sets for the ranks of K units (arrays of length K, ranks 1 = highest)."""

    marginal_low: np.ndarray
    marginal_high: np.ndarray
    simultaneous_low: np.ndarray
    simultaneous_high: np.ndarray
    top: np.ndarray  # bool: in the confidence set for "the top tau"
    bottom: np.ndarray  # bool: in the confidence set for "the bottom tau"


def null_draws(var: np.ndarray, df: np.ndarray, rng: np.random.Generator, draws: int,
               loadings: np.ndarray | None = None) -> np.ndarray:
    """Studentised errors of every ordered difference: T[r, a, b] = (e_a - e_b) / se*_ab in draw r (float32,
    draws x K x K, T[r, a, a] = 0). Base unit b: error z_b ~ N(0, var_b), estimated variance var_b chi2(df_b)/df_b
    (df_b = inf: the variance is known). `loadings` (K x base units) or None (the units are the base units)."""
    return studentised(*error_draws(var, df, rng, draws), loadings)


def error_draws(var: np.ndarray, df: np.ndarray, rng: np.random.Generator, draws: int) -> tuple[np.ndarray, np.ndarray]:
    """The random part of `null_draws`: each base unit's error z (draws x base units, float64) and its variance
    estimate u (float32) in each draw, taken from `rng` in the order `null_draws` takes them."""
    var = np.asarray(var, dtype=float)
    df = np.asarray(df, dtype=float)
    z = rng.standard_normal((draws, var.size)) * np.sqrt(var)
    finite = np.isfinite(df)
    w = np.ones((draws, var.size))
    if finite.any():
        w[:, finite] = rng.chisquare(df[finite], (draws, int(finite.sum()))) / df[finite]
    return z, (var * w).astype(np.float32)  # u: the variance estimate of each base unit in each draw


def studentised(z: np.ndarray, u: np.ndarray, loadings: np.ndarray | None = None) -> np.ndarray:
    """The deterministic part of `null_draws`: T from the draws of `error_draws` (no random numbers taken)."""
    if loadings is None:
        e, pair_var = z.astype(np.float32), u[:, :, None] + u[:, None, :]
    else:
        a = np.asarray(loadings, dtype=float)
        e = (z @ a.T).astype(np.float32)
        diff2 = ((a[:, None, :] - a[None, :, :]) ** 2).astype(np.float32)  # K x K x base
        pair_var = np.einsum("jkb,rb->rjk", diff2, u)
    t = e[:, :, None] - e[:, None, :]
    np.sqrt(pair_var, out=pair_var)
    if not pair_var.all():
        pair_var[pair_var == 0] = np.inf  # a pair without variance has no error: T = 0
    np.divide(t, pair_var, out=t)
    return t


def observed_t(value: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Studentised estimated differences t[a, b] = (x_a - x_b) / se(x_a - x_b) (+-inf for a difference with no
    variance, 0 on ties)."""
    x = np.asarray(value, dtype=float)
    d = x[:, None] - x[None, :]
    v = np.diag(cov)
    se = np.sqrt(np.maximum(v[:, None] + v[None, :] - 2 * cov, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, d / se, np.where(d > 0, np.inf, np.where(d < 0, -np.inf, 0.0)))
    return t


def stepdown_rejections(t_hat: np.ndarray, t_star: np.ndarray, family: np.ndarray, level: float,
                        stepdown: bool = True) -> np.ndarray:
    """Ordered pairs (a, b) of `family` (K x K bool) found with theta_a > theta_b: t_hat[a, b] > q, q the `level`
    quantile over draws of the max of t_star over the pairs still in the family (taken again after each round of
    rejections when `stepdown`)."""
    active = family.copy()
    rejected = np.zeros_like(family)
    while active.any():
        q = np.quantile(np.where(active[None], t_star, -np.inf).max(axis=(1, 2)), level)
        new = active & (t_hat > q)
        rejected |= new
        active &= ~new
        if not (stepdown and new.any()):
            break
    return rejected


def _family_max(t: np.ndarray, active: np.ndarray, negated: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per draw r and unit j: the max of t[r, j, k] (of -t[r, j, k] when `negated`, without a negated copy of `t`:
    the first max of -t is the first min of t) over the k with active[j, k], and that k (-inf, 0 when none).
    The plain max over k first; the entries whose max fell on a pair outside the family (the diagonal, t = 0)
    are read again with the family's mask."""
    arg = t.argmin(axis=2) if negated else t.argmax(axis=2)
    best = np.take_along_axis(t, arg[:, :, None], axis=2)[:, :, 0]
    best = -best if negated else best.copy()
    _refresh(t, active, best, arg, ~active[np.arange(active.shape[0])[None, :], arg], negated)
    return best, arg


def _refresh(t: np.ndarray, active: np.ndarray, best: np.ndarray, arg: np.ndarray, stale: np.ndarray,
             negated: bool = False) -> None:
    """Recompute in place the max (of -t when `negated`) and argmax over the family `active` of the (draw, unit)
    entries `stale`."""
    r, j = np.nonzero(stale)
    if r.size:
        rows = t[r, j, :]
        rows = np.where(active[j], -rows if negated else rows, -np.inf)
        arg[r, j] = rows.argmax(axis=1)
        best[r, j] = rows[np.arange(r.size), arg[r, j]]


def marginal_rejections(t_hat: np.ndarray, t_star: np.ndarray, level: float,
                        stepdown: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """`stepdown_rejections` for every unit's own family at once: unit j's is {(j, k), (k, j) : k != j}, read from
    row j of the draws (T[k, j] = -T[j, k]). Returns (below, above), K x K bool: below[j, k] = k surely below j,
    above[j, k] = k surely above j. Each round takes, for every unit, the `level` quantile over draws of the max
    over its pairs still in the family, and a unit's family shrinks by what it rejected, until no unit rejects
    anything new. The max over a family is kept per draw and unit with the pair attaining it, and read again only
    where that pair left the family: vectorised over units, no loop over them."""
    family = ~np.eye(t_hat.shape[0], dtype=bool)
    return _rounds(t_hat, t_hat.T, family, stepdown, _kept_maxima(t_star, family, level))


def _rounds(t_out: np.ndarray, t_into: np.ndarray, family: np.ndarray, stepdown: bool,
            critical: Callable[[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None], np.ndarray]
            ) -> tuple[np.ndarray, np.ndarray]:
    """The stepdown of `marginal_rejections` over candidates by row: unit j's candidates are the columns c with
    family[j, c] (K x C), t_out[j, c] the estimate of "j above the candidate", t_into[j, c] of "the candidate above
    j"; `critical(out, into, new_below, new_above)` each unit's critical value over its pairs still in the family
    (after the round's rejections, None in the first). Returns (below, above), K x C bool."""
    out, into = family.copy(), family.copy()  # (j, c): j above c still tested; (c, j): c above j
    below, above = np.zeros_like(out), np.zeros_like(out)
    new_below = new_above = None
    while out.any() or into.any():
        q = critical(out, into, new_below, new_above)[:, None]
        new_below, new_above = out & (t_out > q), into & (t_into > q)
        below |= new_below
        above |= new_above
        out &= ~new_below
        into &= ~new_above
        if not (stepdown and (new_below.any() or new_above.any())):
            break
    return below, above


def _kept_maxima(t_star: np.ndarray, family: np.ndarray, level: float) -> Callable:
    """`_rounds`' critical values from draws t_star[r, j, c]: the max over each family kept per draw and unit with
    the pair attaining it, read again only where that pair left the family."""
    best_out, arg_out = _family_max(t_star, family)
    best_in, arg_in = _family_max(t_star, family, negated=True)
    units = np.arange(family.shape[0])[None, :]

    def critical(out: np.ndarray, into: np.ndarray, new_below: np.ndarray | None,
                 new_above: np.ndarray | None) -> np.ndarray:
        if new_below is not None:
            _refresh(t_star, out, best_out, arg_out, new_below[units, arg_out])
            _refresh(t_star, into, best_in, arg_in, new_above[units, arg_in], negated=True)
        with np.errstate(invalid="ignore"):  # a unit with nothing left: q is nan, it rejects nothing
            return np.quantile(np.maximum(best_out, best_in), level, axis=0)
    return critical


def _whole_maxima(slabs: np.ndarray, level: float) -> Callable:
    """`_rounds`' critical values for few candidates per unit, the draws as slabs[c, j, r] (= t_star[r, j, c]):
    the max over the family taken again whole each round (the same values as kept maxima give)."""
    def critical(out: np.ndarray, into: np.ndarray, *_: object) -> np.ndarray:
        best = np.where(out.T[:, :, None], slabs, -np.inf).max(axis=0, initial=-np.inf)
        np.maximum(best, -np.where(into.T[:, :, None], slabs, np.inf).min(axis=0, initial=np.inf), out=best)
        with np.errstate(invalid="ignore"):
            return np.quantile(best, level, axis=1)
    return critical


def bounds(rejected: np.ndarray, units: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) rank bounds from the ordered pairs found: 1 + #surely above, K - #surely below."""
    k = rejected.shape[0]
    low = 1 + rejected.sum(axis=0)  # column j: units a with theta_a > theta_j
    high = k - rejected.sum(axis=1)  # row j: units b with theta_j > theta_b
    return (low, high) if units is None else (low[units], high[units])


def rank_sets(value: np.ndarray, cov: np.ndarray, t_star: np.ndarray, level: float, tau: int = 5,
              stepdown: bool = True) -> RankSets:
    """Marginal and simultaneous `level` confidence sets for the ranks of the units with estimates `value` and
    covariance `cov`, and the sets for the top and bottom `tau`, from null draws `t_star` (`null_draws`)."""
    t_hat = observed_t(value, cov)
    k = t_hat.shape[0]
    off = ~np.eye(k, dtype=bool)
    low, high = marginal_bounds(t_hat, t_star, level, stepdown)
    s_low, s_high = bounds(stepdown_rejections(t_hat, t_star, off, level, stepdown))
    tau = min(tau, k)
    return RankSets(low, high, s_low, s_high, s_low <= tau, s_high >= k - tau + 1)


def marginal_bounds(t_hat: np.ndarray, t_star: np.ndarray, level: float, stepdown: bool = True,
                    groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every unit's marginal set (lower, upper rank) among all units, or among its group's (`groups`: the same
    draws, each unit's family restricted to its group's units; every group at once, each unit's candidates its
    group's units, padded to the largest group)."""
    if groups is None:
        below, above = marginal_rejections(t_hat, t_star, level, stepdown)
        return 1 + above.sum(axis=1), t_hat.shape[0] - below.sum(axis=1)
    _, label = np.unique(np.asarray(groups), return_inverse=True)
    label = label.ravel()
    units, count = np.arange(label.size), np.bincount(label)
    order = np.argsort(label, kind="stable")  # each group's units, in order, one block after another
    start, size = (np.cumsum(count) - count)[label], count[label]
    at = np.arange(count.max(initial=0))[None, :]
    # unit j's candidates: its group's units, padded with itself (never in its family)
    cand = np.where(at < size[:, None], order[np.minimum(start[:, None] + at, max(label.size - 1, 0))], units[:, None])
    family = cand != units[:, None]
    rows = units[:, None]
    # the draws as width x units x draws: a unit's max over its (few) candidates is a max across slabs, taken whole
    # each round (no argmax kept), and the quantile over draws reads contiguous rows
    slabs = np.ascontiguousarray(t_star[:, rows, cand].transpose(2, 1, 0))
    below, above = _rounds(t_hat[rows, cand], t_hat[cand, rows], family, stepdown, _whole_maxima(slabs, level))
    return (1 + above.sum(axis=1)).astype(np.int64), (size - below.sum(axis=1)).astype(np.int64)


def mean_loadings(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(group labels in order, loadings G x units): each group the unweighted mean of its units."""
    labels, idx = np.unique(groups, return_inverse=True)
    a = np.zeros((labels.size, idx.size))
    a[idx, np.arange(idx.size)] = 1.0
    return labels, a / a.sum(axis=1, keepdims=True)
