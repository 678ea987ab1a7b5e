"""Customer lifetime value: BG/NBD for repeat purchases, Gamma-Gamma for spend, both fitted by ML.

Pure: per-customer summary features in, fitted models, the ``customer_value`` table and model facts
out. The refresh stage computes the per-customer aggregates with SQL over the curated ``orders``
history and calls :func:`customer_value`; nothing here reads raw rows.

Sources:
- BG/NBD: Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An Alternative to the
  Pareto/NBD Model", Marketing Science 24(2) — likelihood eq. 6, conditional expectation eq. 10,
  P(alive) from the companion note "Computing P(alive) Using the BG/NBD Model" (2008).
- Gamma-Gamma: Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base
  Analysis", Journal of Marketing Research 42(4) — marginal likelihood of the mean spend and the
  conditional expected spend (eq. 5 of the note "The Gamma-Gamma Model of Monetary Value", 2013).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy.optimize import minimize
from scipy.special import betaln, digamma, gammaln, hyp2f1
from scipy.stats import nbinom

from analytics.base import ModelFact, TableSpec, col
from analytics.errors import DataError

MODEL_VERSION = "1"
#: Fewer customers with a repeat purchase than this and a fit is not attempted: the dropout and
#: spend heterogeneity are then guesses, and a snapshot built on them would mislead.
MIN_REPEAT_CUSTOMERS = 20
#: Horizons of ``expected_purchases_<n>d`` / ``expected_value_<n>d``, in days.
HORIZONS_DAYS = (30, 90, 365)
#: L-BFGS-B iterations allowed before a fit is reported as not converged.
MAX_ITERATIONS = 1_000
#: Norm of the gradient of the mean log-likelihood (per customer, over log parameters) a fit must
#: reach to count as converged; the optimizer's own stop (relative change of the objective) can
#: halt on a plateau well before that.
GRADIENT_TOLERANCE = 1e-4
#: Shape parameters (r, a, b, p, q) are kept within e^±LOG_BOUND, and scale parameters (α, γ)
#: within e^±LOG_BOUND of their starting scale. A parameter pinned there is not identified by the
#: history (nobody ever drops out, everyone buys like clockwork) and the fit is reported as failed:
#: left free it would wander to 10^6 and still look converged.
LOG_BOUND = 10.0

FitStatus = Literal["fitted", "insufficient_history", "fit_failed"]
PurchaseModel = Literal["BG/NBD", "MBG/NBD"]


class ClvInputError(DataError):
    """Per-customer features that no customer could have (recency beyond age, negative counts...)."""


# --- BG/NBD -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FitDiagnostics:
    """How the optimizer ended: enough to tell a plateau from a fit that ran out of iterations."""

    converged: bool
    message: str
    iterations: int
    gradient_norm: float
    method: str


class _Diagnosed:
    """How a fit went, read through its ``diagnostics``."""

    diagnostics: FitDiagnostics

    @property
    def converged(self) -> bool:
        return self.diagnostics.converged

    @property
    def iterations(self) -> int:
        return self.diagnostics.iterations

    @property
    def method(self) -> str:
        return self.diagnostics.method


@dataclass(frozen=True)
class BgNbdFit(_Diagnosed):
    """A fitted BG/NBD or MBG/NBD model; rates are per ``time_unit`` of the features it was fitted on.

    λ ~ Gamma(shape r, rate α) is a customer's purchase rate while alive; p ~ Beta(a, b) the chance
    of dropping out after each repeat purchase (BG/NBD), or after every purchase including the first
    (MBG/NBD, ``modified``), where a customer with one purchase can be gone too.
    """

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    n_customers: int
    diagnostics: FitDiagnostics
    modified: bool = False

    @property
    def model(self) -> PurchaseModel:
        return "MBG/NBD" if self.modified else "BG/NBD"

    def expected_purchases(self, t: float, frequency: np.ndarray, recency: np.ndarray, age: np.ndarray) -> np.ndarray:
        """E[purchases in (T, T + t] | x, t_x, T] (FHL 2005 eq. 10; Batislam et al. 2007 for MBG/NBD)."""
        return _expected_purchases(self._params, t, frequency, recency, age)

    def p_alive(self, frequency: np.ndarray, recency: np.ndarray, age: np.ndarray) -> np.ndarray:
        """P(still active at T | x, t_x, T)."""
        return _p_alive(self._params, frequency, recency, age)

    def expected_purchases_new(self, t: float) -> float:
        """E[X(t)] for a customer just acquired (FHL 2005 eq. 9): eq. 10 at x = t_x = T = 0."""
        zero = np.zeros(1)
        return float(self.expected_purchases(t, zero, zero, zero)[0])

    def holdout_log_likelihood(
        self, frequency: np.ndarray, recency: np.ndarray, age: np.ndarray, holdout: np.ndarray, duration: float
    ) -> np.ndarray:
        """Each customer's log P(``holdout`` purchases in (T, T + duration] | x, t_x, T): the score of a
        fit on a calibration period against what its customers went on to do."""
        return _holdout_log_probability(self._params, frequency, recency, age, holdout, duration)

    @property
    def _params(self) -> _Params:
        return _Params(self.r, self.alpha, self.a, self.b, int(self.modified))


@dataclass(frozen=True)
class _Params:
    """(r, α, a, b) and the dropout chances a customer had before its first repeat purchase: 0 in
    BG/NBD, 1 in MBG/NBD. MBG/NBD's formulas are BG/NBD's with b + 1 for b, except that P(alive)'s
    dropout term stays for customers without a repeat purchase."""

    r: float
    alpha: float
    a: float
    b: float
    shift: int


def bg_nbd_log_likelihood(
    r: float, alpha: float, a: float, b: float, x: np.ndarray, t_x: np.ndarray, age: np.ndarray
) -> np.ndarray:
    """Each customer's log-likelihood (FHL 2005 eq. 6), summed in log space so it cannot overflow."""
    return _log_likelihood(_Params(r, alpha, a, b, 0), x, t_x, age)


def mbg_nbd_log_likelihood(
    r: float, alpha: float, a: float, b: float, x: np.ndarray, t_x: np.ndarray, age: np.ndarray
) -> np.ndarray:
    """Each customer's log-likelihood under MBG/NBD (Batislam, Denizel & Filiztekin 2007)."""
    return _log_likelihood(_Params(r, alpha, a, b, 1), x, t_x, age)


def _log_likelihood(params: _Params, x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
    r, alpha, a, b, k = params.r, params.alpha, params.a, params.b, params.shift
    x = np.asarray(x, dtype=float)
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
    alive = betaln(a, b + x + k) - (r + x) * np.log(alpha + age)
    can_drop = x + k > 0
    dropped = np.full_like(alive, -np.inf)
    dropped[can_drop] = betaln(a + 1, b + x[can_drop] + k - 1) - (r + x[can_drop]) * np.log(alpha + t_x[can_drop])
    return np.asarray(common + np.logaddexp(alive, dropped))


def _bg_nbd_objective(
    log_params: np.ndarray,
    x: np.ndarray,
    t_x: np.ndarray,
    age: np.ndarray,
    weight: np.ndarray,
    x_index: np.ndarray,
    shift: int = 0,
) -> tuple[float, np.ndarray]:
    """Weighted mean negative log-likelihood and its gradient over log(r, α, a, b); ``shift`` 1 for MBG/NBD.

    ``x`` holds the distinct frequencies and ``x_index`` points each row at its own: the special
    functions then run over a few hundred values instead of every customer.
    """
    r, alpha, a, b = np.exp(log_params)
    k = shift
    n = weight.sum()
    can_drop_u = x + k > 0
    xs = x[x_index]
    can_drop = xs + k > 0
    log_alpha_age = np.log(alpha + age)
    log_alpha_tx = np.log(alpha + t_x)
    common = (gammaln(r + x) - gammaln(r) + r * np.log(alpha) - betaln(a, b))[x_index]
    alive = betaln(a, b + x + k)[x_index] - (r + xs) * log_alpha_age
    dropped_u = np.full(len(x), -np.inf)
    dropped_u[can_drop_u] = betaln(a + 1, b + x[can_drop_u] + k - 1)
    dropped = np.where(can_drop, dropped_u[x_index] - (r + xs) * log_alpha_tx, -np.inf)
    both = np.logaddexp(alive, dropped)
    ll = common + both
    # Share of each customer's likelihood from "still alive at T"; the rest is "dropped after t_x".
    w_alive = np.exp(alive - both)
    w_dropped = np.where(can_drop, 1.0 - w_alive, 0.0)

    psi_ab_x = digamma(a + b + x + k)
    psi_b_x1 = np.zeros(len(x))
    psi_b_x1[can_drop_u] = digamma(b + x[can_drop_u] + k - 1)
    d_r = (digamma(r + x) - digamma(r) + np.log(alpha))[x_index] - w_alive * log_alpha_age - w_dropped * log_alpha_tx
    d_alpha = r / alpha - (r + xs) * (w_alive / (alpha + age) + w_dropped / (alpha + t_x))
    d_a = (
        -(digamma(a) - digamma(a + b))
        + w_alive * (digamma(a) - psi_ab_x)[x_index]
        + w_dropped * (digamma(a + 1) - psi_ab_x)[x_index]
    )
    d_b = (
        -(digamma(b) - digamma(a + b))
        + w_alive * (digamma(b + x + k) - psi_ab_x)[x_index]
        + w_dropped * (psi_b_x1 - psi_ab_x)[x_index]
    )
    # Chain rule to log parameters: d/d(log θ) = θ · d/dθ.
    grad = np.array([theta * _dot(weight, d) for theta, d in ((r, d_r), (alpha, d_alpha), (a, d_a), (b, d_b))])
    return -_dot(weight, ll) / n, -grad / n


def fit_bg_nbd(
    frequency: np.ndarray,
    recency: np.ndarray,
    age: np.ndarray,
    *,
    max_iterations: int = MAX_ITERATIONS,
) -> BgNbdFit:
    """Fit BG/NBD by maximum likelihood on per-customer x (repeat purchases), t_x and T.

    ``recency`` (t_x, first to last purchase) and ``age`` (T, first purchase to the end of the
    observation) share one time unit, and the fitted α is in that unit. A fit that stops short is
    returned with ``converged`` False and its diagnostics, never raised.
    """
    return _fit_purchases(frequency, recency, age, max_iterations, modified=False)


def fit_mbg_nbd(
    frequency: np.ndarray,
    recency: np.ndarray,
    age: np.ndarray,
    *,
    max_iterations: int = MAX_ITERATIONS,
) -> BgNbdFit:
    """Fit MBG/NBD (Batislam et al. 2007) by maximum likelihood; as :func:`fit_bg_nbd` otherwise."""
    return _fit_purchases(frequency, recency, age, max_iterations, modified=True)


def _fit_purchases(
    frequency: np.ndarray,
    recency: np.ndarray,
    age: np.ndarray,
    max_iterations: int,
    *,
    modified: bool,
    warm: BgNbdFit | None = None,
) -> BgNbdFit:
    """Fit (M)BG/NBD; ``warm``, a fit on similar data (the whole history for its calibration part),
    is where the optimizer starts (the bounds stay those of this data)."""
    x, t_x, big_t = _validated_features(frequency, recency, age)
    repeaters = int(np.count_nonzero(x))
    if repeaters < 1:
        raise ClvInputError(
            f"{'MBG/NBD' if modified else 'BG/NBD'} needs customers with repeat purchases, and none of the "
            f"{len(x)} has one: wait for more history before fitting"
        )
    # Start λ at the observed repeat rate so α begins in the features' time unit.
    rate = max(float(x.sum()) / max(float(big_t.sum()), 1e-12), 1e-12)
    centre = np.log([1.0, 1.0 / rate, 1.0, 1.0])
    start = centre
    if warm is not None:
        start = np.clip(np.log([warm.r, warm.alpha, warm.a, warm.b]), centre - LOG_BOUND + 1, centre + LOG_BOUND - 1)
    # Customers with the same (x, t_x, T) share a likelihood term: fit on the distinct triples,
    # weighted by how many customers have each (day-resolution histories repeat them a lot).
    # pandas hashes the rows; np.unique(axis=0) sorts them and takes seconds for a million.
    # Sorted, so the sums (and the fit's last digits) do not depend on the customers' order.
    counted = pd.DataFrame({"x": x, "t_x": t_x, "T": big_t}).value_counts(sort=False).sort_index().reset_index()
    distinct_x, x_index = np.unique(counted["x"].to_numpy(), return_inverse=True)
    shift = int(modified)
    args = (
        distinct_x,
        counted["t_x"].to_numpy(),
        counted["T"].to_numpy(),
        counted["count"].to_numpy(float),
        x_index,
        shift,
    )
    (r, alpha, a, b), diagnostics = _maximise(
        _bg_nbd_objective, start, args, max_iterations, ("r", "alpha", "a", "b"), centre
    )
    per_group = _log_likelihood(_Params(r, alpha, a, b, shift), counted["x"].to_numpy(float), args[1], args[2])
    return BgNbdFit(r, alpha, a, b, _dot(counted["count"].to_numpy(float), per_group), len(x), diagnostics, modified)


def bg_nbd_expected_purchases(
    r: float, alpha: float, a: float, b: float, t: float, frequency: np.ndarray, recency: np.ndarray, age: np.ndarray
) -> np.ndarray:
    """E[Y(t) | x, t_x, T] of FHL 2005 eq. 10.

    The factor ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x; a+b+x−1; z) is evaluated after Euler's
    transformation (DLMF 15.8.1) as (1−z)^(a−1) · 2F1(a+b−1−r, a−1; a+b+x−1; z): the same value,
    but the parameters no longer grow with x, where hyp2f1 loses accuracy.
    """
    return _expected_purchases(_Params(r, alpha, a, b, 0), t, frequency, recency, age)


def mbg_nbd_expected_purchases(
    r: float, alpha: float, a: float, b: float, t: float, frequency: np.ndarray, recency: np.ndarray, age: np.ndarray
) -> np.ndarray:
    """E[Y(t) | x, t_x, T] under MBG/NBD (Batislam et al. 2007): eq. 10 with b + 1 for b, over
    1 + a/(b+x) · ((α+T)/(α+t_x))^(r+x) for every customer."""
    return _expected_purchases(_Params(r, alpha, a, b, 1), t, frequency, recency, age)


def _expected_purchases(
    params: _Params, t: float, frequency: np.ndarray, recency: np.ndarray, age: np.ndarray
) -> np.ndarray:
    r, alpha, a, b = params.r, params.alpha, params.a, params.b + params.shift
    x = np.asarray(frequency, dtype=float)
    t_x = np.asarray(recency, dtype=float)
    big_t = np.asarray(age, dtype=float)
    if abs(a - 1.0) < 1e-9:
        # (a−1) cancels between numerator and denominator; step off the removable singularity.
        a = 1.0 + 1e-7
    z = t / (alpha + big_t + t)
    scaled = np.exp((a - 1.0) * np.log1p(-z)) * hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)
    numerator = (a + b + x - 1.0) / (a - 1.0) * (1.0 - scaled)
    # exp overflows to inf for a customer long gone, and x/(1+inf) = 0 is the right expectation.
    with np.errstate(over="ignore"):
        return np.asarray(numerator / (1.0 + np.exp(_log_dropout_odds(params, x, t_x, big_t))))


def bg_nbd_p_alive(
    r: float, alpha: float, a: float, b: float, frequency: np.ndarray, recency: np.ndarray, age: np.ndarray
) -> np.ndarray:
    """P(alive at T | x, t_x, T) = 1 / (1 + δ(x>0) · a/(b+x−1) · ((α+T)/(α+t_x))^(r+x))."""
    return _p_alive(_Params(r, alpha, a, b, 0), frequency, recency, age)


def mbg_nbd_p_alive(
    r: float, alpha: float, a: float, b: float, frequency: np.ndarray, recency: np.ndarray, age: np.ndarray
) -> np.ndarray:
    """P(alive at T | x, t_x, T) = 1 / (1 + a/(b+x) · ((α+T)/(α+t_x))^(r+x)): below 1 at x = 0 too."""
    return _p_alive(_Params(r, alpha, a, b, 1), frequency, recency, age)


def _p_alive(params: _Params, frequency: np.ndarray, recency: np.ndarray, age: np.ndarray) -> np.ndarray:
    x = np.asarray(frequency, dtype=float)
    log_odds = _log_dropout_odds(params, x, np.asarray(recency, dtype=float), np.asarray(age, dtype=float))
    # -logaddexp(0, ·) is log(1/(1+odds)) without overflow for a customer long gone.
    return np.asarray(np.exp(-np.logaddexp(0.0, log_odds)))


def _log_dropout_odds(params: _Params, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray) -> np.ndarray:
    """Log odds of "dropped after the last purchase" against "still alive"; −inf where no dropout
    chance was taken yet (BG/NBD without a repeat purchase)."""
    r, alpha, a, b, k = params.r, params.alpha, params.a, params.b, params.shift
    can_drop = x + k > 0
    log_odds = np.full(x.shape, -np.inf)
    xr = x[can_drop]
    log_odds[can_drop] = (
        np.log(a)
        - np.log(b + xr + k - 1.0)
        + (r + xr) * (np.log(alpha + big_t[can_drop]) - np.log(alpha + t_x[can_drop]))
    )
    return log_odds


def _holdout_log_probability(
    params: _Params,
    frequency: np.ndarray,
    recency: np.ndarray,
    age: np.ndarray,
    holdout: np.ndarray,
    duration: float,
) -> np.ndarray:
    """log P(X(T, T+τ) = x* | x, t_x, T).

    Gone at T, a customer buys nothing more. Alive, λ | · ~ Gamma(r+x, α+T) and p | · ~ Beta(a, b')
    with b' = b+x (BG/NBD) or b+x+1 (MBG/NBD), independent; in (T, T+τ] the customer either makes x*
    purchases and survives each dropout chance, or drops out at the x*-th while the Poisson clock would
    have run to x* or more (FHL 2005 eq. 8 with the posterior mixing distributions):
    E[(1−p)^x*]·NB(x*) + δ(x*>0)·E[p(1−p)^(x*−1)]·P(NB ≥ x*), NB the Gamma-Poisson count in τ.
    """
    r, alpha, a, b, k = params.r, params.alpha, params.a, params.b, params.shift
    x = np.asarray(frequency, dtype=float)
    t_x = np.asarray(recency, dtype=float)
    big_t = np.asarray(age, dtype=float)
    x_star = np.asarray(holdout, dtype=float)
    log_odds = _log_dropout_odds(params, x, t_x, big_t)
    log_alive = -np.logaddexp(0.0, log_odds)
    log_gone = log_odds + log_alive
    b_post = b + x + k
    success = (alpha + big_t) / (alpha + big_t + duration)
    stays = betaln(a, b_post + x_star) - betaln(a, b_post) + nbinom.logpmf(x_star, r + x, success)
    leaves = np.full(x.shape, -np.inf)
    bought = x_star > 0
    leaves[bought] = (
        betaln(a + 1, b_post[bought] + x_star[bought] - 1)
        - betaln(a, b_post[bought])
        + nbinom.logsf(x_star[bought] - 1, r + x[bought], success[bought])
    )
    given_alive = log_alive + np.logaddexp(stays, leaves)
    return np.asarray(np.where(bought, given_alive, np.logaddexp(log_gone, given_alive)))


# --- Gamma-Gamma --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GammaGammaFit(_Diagnosed):
    """A fitted Gamma-Gamma spend model.

    A transaction's value is Gamma(shape p, rate ν); ν varies across customers as Gamma(shape q,
    rate γ). The population mean spend p·γ/(q−1) is finite only when q > 1.
    """

    p: float
    q: float
    gamma: float
    log_likelihood: float
    n_customers: int
    diagnostics: FitDiagnostics

    @property
    def population_mean_spend(self) -> float:
        """E[Z] for a customer with no repeat purchase yet; infinite when q ≤ 1."""
        return self.p * self.gamma / (self.q - 1.0) if self.q > 1.0 else float("inf")

    def expected_spend(self, frequency: np.ndarray, mean_spend: np.ndarray) -> np.ndarray:
        """E[Z | x, z̄] = p(γ + x·z̄) / (p·x + q − 1): z̄ shrunk towards the population mean."""
        x = np.asarray(frequency, dtype=float)
        m = np.where(x > 0, np.asarray(mean_spend, dtype=float), 0.0)
        return np.asarray(self.p * (self.gamma + x * m) / (self.p * x + self.q - 1.0))


def gamma_gamma_log_likelihood(p: float, q: float, gamma: float, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Each customer's log density of the mean spend z̄ = m over x repeat transactions."""
    px = p * x
    return np.asarray(
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1.0) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(gamma + x * m)
    )


def _gamma_gamma_objective(
    log_params: np.ndarray,
    x: np.ndarray,
    m: np.ndarray,
    log_xm: np.ndarray,
    weight: np.ndarray,
    distinct_x: np.ndarray,
    x_index: np.ndarray,
) -> tuple[float, np.ndarray]:
    """Weighted mean negative log-likelihood of the mean spends and its gradient over log(p, q, γ).

    Each row is a distinct (x, z̄) pair and ``weight`` the customers who have it; ``log_xm`` is
    log(x·z̄), fixed across evaluations; the special functions run over the ``distinct_x`` only.
    """
    p, q, gamma = np.exp(log_params)
    n = weight.sum()
    pu = p * distinct_x
    px = pu[x_index]
    log_gxm = np.log(gamma + x * m)
    # The density of z̄ (see gamma_gamma_log_likelihood), with (px−1)·log z̄ + px·log x = px·log(x·z̄) − log z̄.
    ll = (gammaln(pu + q) - gammaln(pu))[x_index] - gammaln(q) + q * np.log(gamma) + px * log_xm - (px + q) * log_gxm
    psi_pxq = digamma(pu + q)[x_index]
    d_p = x * (psi_pxq - digamma(pu)[x_index] + log_xm - log_gxm)
    d_q = psi_pxq - digamma(q) + np.log(gamma) - log_gxm
    d_gamma = q / gamma - (px + q) / (gamma + x * m)
    grad = np.array([p * _dot(weight, d_p), q * _dot(weight, d_q), gamma * _dot(weight, d_gamma)])
    # −Σ log z̄ is constant in the parameters and left out: it moves neither the optimum nor the gradient.
    return -_dot(weight, ll) / n, -grad / n


def fit_gamma_gamma(
    frequency: np.ndarray, mean_spend: np.ndarray, *, max_iterations: int = MAX_ITERATIONS
) -> GammaGammaFit:
    """Fit Gamma-Gamma by maximum likelihood on customers with x > 0 and a positive mean spend.

    ``mean_spend`` is z̄, the mean value of a customer's repeat transactions; customers without a
    repeat transaction carry no spend information and are left out of the fit.
    """
    x_all = _as_float("frequency", frequency)
    m_all = _as_float("mean spend", mean_spend)
    if len(x_all) != len(m_all):
        raise ClvInputError(
            f"frequency has {len(x_all)} values but mean spend {len(m_all)}: pass one of each per customer"
        )
    if (x_all < 0).any():
        raise ClvInputError(
            f"{int((x_all < 0).sum())} customers have a negative frequency: frequency counts repeat purchases"
        )
    used = (x_all > 0) & (m_all > 0)
    if not used.any():
        raise ClvInputError(
            "Gamma-Gamma needs customers with a repeat purchase of positive value, and there are none: "
            "wait for more history before fitting"
        )
    # Start at the method-of-moments scale: p = q = 2 puts the mean spend at γ.
    start = np.log([2.0, 2.0, max(float(m_all[used].mean()), 1e-12)])
    # A customer's spend likelihood depends on (x, z̄) alone (not on t_x or T): fit on the distinct
    # pairs weighted by how many customers have each, sorted so the sums do not depend on row order.
    counted = pd.DataFrame({"x": x_all[used], "m": m_all[used]}).value_counts(sort=False).sort_index().reset_index()
    x, m, weight = counted["x"].to_numpy(), counted["m"].to_numpy(), counted["count"].to_numpy(float)
    distinct_x, x_index = np.unique(x, return_inverse=True)
    args = (x, m, np.log(x * m), weight, distinct_x, x_index)
    (p, q, gamma), diagnostics = _maximise(
        _gamma_gamma_objective, start, args, max_iterations, ("p", "q", "gamma"), np.array([0.0, 0.0, start[2]])
    )
    ll = _dot(weight, gamma_gamma_log_likelihood(p, q, gamma, x, m))
    return GammaGammaFit(p, q, gamma, ll, int(used.sum()), diagnostics)


# --- shared fitting -----------------------------------------------------------------------------

_METHOD = "maximum likelihood: scipy.optimize.minimize L-BFGS-B on log parameters, analytic gradient"


def _maximise(
    objective: Callable[..., tuple[float, np.ndarray]],
    start: np.ndarray,
    args: tuple[np.ndarray | int, ...],
    max_iterations: int,
    names: tuple[str, ...],
    centre: np.ndarray,
) -> tuple[tuple[float, ...], FitDiagnostics]:
    """Minimise the mean negative log-likelihood; returns the parameters and the diagnostics.

    Log parameters are bounded within ±LOG_BOUND of ``centre``: 0 for shapes, the data's scale for
    the parameter measured in the data's units.
    """
    bounds = [(c - LOG_BOUND, c + LOG_BOUND) for c in centre]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        result = minimize(
            objective,
            start,
            args=args,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": max_iterations, "ftol": 1e-15, "gtol": 1e-10},
        )
        _, gradient = objective(result.x, *args)
    gradient_norm = float(np.linalg.norm(gradient))
    pinned = [n for n, v, c in zip(names, result.x, centre, strict=True) if abs(v - c) >= LOG_BOUND - 1e-6]
    finite = bool(np.isfinite(result.fun)) and bool(np.isfinite(gradient_norm))
    converged = finite and not pinned and gradient_norm <= GRADIENT_TOLERANCE and int(result.nit) < max_iterations
    message = str(result.message)
    if pinned:
        message = (
            f"{', '.join(pinned)} reached {'its bound' if len(pinned) == 1 else 'their bounds'} "
            f"(e^±{LOG_BOUND:g}): the history does not identify {'it' if len(pinned) == 1 else 'them'} ({message})"
        )
    elif not finite:
        message = f"the log-likelihood is not finite at the optimizer's stop ({message})"
    elif not converged:
        message = f"stopped with gradient norm {gradient_norm:.3g} > {GRADIENT_TOLERANCE:g} ({message})"
    elif not result.success:
        # A line search that fails on a flat optimum is still an optimum; say which test passed.
        message = f"gradient norm {gradient_norm:.3g} ≤ {GRADIENT_TOLERANCE:g} ({message.strip()})"
    params = tuple(float(v) for v in np.exp(result.x))
    diagnostics = FitDiagnostics(converged, message, int(result.nit), gradient_norm, _METHOD)
    return params, diagnostics


def _dot(weight: np.ndarray, values: np.ndarray) -> float:
    """Σ weight·values without BLAS: numpy's ``@`` hands long vectors to OpenBLAS's threads, which on
    a busy machine spin for longer than the sum takes (measured: 18 ms against 1 ms per objective)."""
    return float(np.multiply(weight, values).sum())


def _as_float(name: str, values: np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ClvInputError(f"{name} must be one value per customer (a 1-d array), got shape {array.shape}")
    bad = ~np.isfinite(array)
    if bad.any():
        raise ClvInputError(
            f"{name} has {int(bad.sum())} missing or infinite values (first at position "
            f"{int(np.argmax(bad))}): drop or fill those customers before fitting"
        )
    return array


def _validated_features(
    frequency: np.ndarray, recency: np.ndarray, age: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = _as_float("frequency", frequency)
    t_x = _as_float("recency", recency)
    big_t = _as_float("age", age)
    if not len(x) == len(t_x) == len(big_t):
        raise ClvInputError(
            f"frequency, recency and age have {len(x)}, {len(t_x)} and {len(big_t)} values: "
            "pass one of each per customer"
        )

    def reject(mask: np.ndarray, what: str) -> None:
        if mask.any():
            raise ClvInputError(f"{int(mask.sum())} customers (first at position {int(np.argmax(mask))}) {what}")

    reject(
        (x < 0) | (x != np.round(x)),
        "have a frequency that is not a whole number ≥ 0: frequency counts repeat purchases",
    )
    reject((t_x < 0) | (big_t < 0), "have a negative recency or age: both are measured from the first purchase")
    reject(t_x > big_t, "have a recency beyond their age: the last purchase cannot be after the end of observation")
    reject((x == 0) & (t_x != 0), "have no repeat purchase but a non-zero recency: recency is 0 without a repeat")
    reject((x > 0) & (t_x == 0), "have repeat purchases but recency 0: count repeat purchases in distinct periods")
    return x, t_x, big_t


# --- the customer_value table -------------------------------------------------------------------

#: Per-customer aggregates :func:`customer_value` takes, one row per customer over the whole history.
#: ``order_days`` counts distinct days with an order (the model's transactions are order days, so
#: several orders on one day are one purchase); ``first_day_amount`` (optional) is what was spent
#: on the first order day, so the spend model sees repeat purchases only, as Gamma-Gamma assumes.
#: The calibration columns (optional, all three or none) split the history at ``calibration_end``
#: (the same date on every row): order days on or before it and the last of them; the days after it
#: are the holdout on which BG/NBD and MBG/NBD, fitted on the calibration period, are compared.
CUSTOMER_AGGREGATES = pa.schema(
    [
        ("customer_id", pa.string()),
        ("first_order_date", pa.date32()),
        ("last_order_date", pa.date32()),
        ("order_days", pa.int64()),
        ("total_amount", pa.float64()),
        ("first_day_amount", pa.float64()),
        ("calibration_order_days", pa.int64()),
        ("calibration_last_order_date", pa.date32()),
        ("calibration_end", pa.date32()),
    ]
)
_REQUIRED_AGGREGATES = ("customer_id", "first_order_date", "last_order_date", "order_days", "total_amount")
_CALIBRATION_AGGREGATES = ("calibration_order_days", "calibration_last_order_date", "calibration_end")

CUSTOMER_VALUE = TableSpec(
    "customer_value",
    "as_of",
    "One row per customer as of the newest order: expected purchases and P(alive) from BG/NBD or "
    "MBG/NBD (whichever predicted a held-out period better; the clv_purchase_model fact says which), "
    "Gamma-Gamma expected spend, undiscounted expected value over 30/90/365 days.",
    pa.schema(
        [
            col("customer_id", pa.string(), "customer"),
            col("frequency", pa.int64(), "repeat purchases: distinct order days − 1"),
            col("repeat_span_days", pa.int64(), "last − first order date (the model's t_x)"),
            col("age_days", pa.int64(), "as_of − first order date"),
            col("mean_repeat_spend", pa.float64(), "mean amount per repeat order day (null without a repeat)"),
            col(
                "p_alive",
                pa.float64(),
                "probability the customer is still active (BG/NBD gives 1 to every customer with a single "
                "order: it lets customers leave only after a repeat purchase)",
            ),
            col("expected_purchases_30d", pa.float64(), "expected order days in the next 30 days"),
            col("expected_purchases_90d", pa.float64(), "expected order days in the next 90 days"),
            col("expected_purchases_365d", pa.float64(), "expected order days in the next 365 days"),
            col(
                "expected_spend",
                pa.float64(),
                "expected amount per future order day (mean spend shrunk towards the population's)",
            ),
            col(
                "expected_value_30d",
                pa.float64(),
                "expected purchases × expected spend over the next 30 days, **undiscounted**",
            ),
            col(
                "expected_value_90d",
                pa.float64(),
                "expected purchases × expected spend over the next 90 days, **undiscounted**",
            ),
            col(
                "expected_value_365d",
                pa.float64(),
                "expected purchases × expected spend over the next 365 days, **undiscounted**",
            ),
            col("as_of", pa.date32(), "the newest order date"),
        ]
    ),
)


@dataclass(frozen=True)
class CustomerValueResult:
    """The ``customer_value`` rows and facts of one refresh.

    ``keep_previous`` tells the caller not to write: the history is too small or a fit failed, so
    the snapshot already in the lake (if any) stays, and the facts say why. ``purchase_model`` is
    the fit behind the rows (``bg_nbd`` or ``mbg_nbd``, chosen as the facts say).
    """

    status: FitStatus
    table: pa.Table
    facts: tuple[ModelFact, ...]
    bg_nbd: BgNbdFit | None = None
    gamma_gamma: GammaGammaFit | None = None
    message: str = ""
    mbg_nbd: BgNbdFit | None = None
    chosen: PurchaseModel | None = None

    @property
    def keep_previous(self) -> bool:
        return self.status != "fitted"

    @property
    def purchase_model(self) -> BgNbdFit | None:
        return {"BG/NBD": self.bg_nbd, "MBG/NBD": self.mbg_nbd}.get(self.chosen or "")


@dataclass(frozen=True)
class _Features:
    """Per-customer model inputs in days, sorted by customer id; the calibration split if given."""

    ids: pa.Array
    x: np.ndarray
    t_x: np.ndarray
    age: np.ndarray
    spend: np.ndarray
    split: _Split | None


@dataclass(frozen=True)
class _Split:
    """The customers who had bought by ``calibration_end``: their features then, and their order days after."""

    calibration_end: date
    holdout_days: int
    x: np.ndarray
    t_x: np.ndarray
    age: np.ndarray
    holdout: np.ndarray


@dataclass(frozen=True)
class _Choice:
    """Which purchase model the rows use, and the comparison that chose it."""

    chosen: PurchaseModel | None
    chosen_by: str
    holdout: dict[PurchaseModel, float]
    facts: dict[str, float | int | str | bool | None]


def customer_value(
    aggregates: pa.Table,
    as_of: date,
    *,
    min_repeat_customers: int = MIN_REPEAT_CUSTOMERS,
    max_iterations: int = MAX_ITERATIONS,
) -> CustomerValueResult:
    """The ``customer_value`` table for ``as_of`` from per-customer aggregates (see CUSTOMER_AGGREGATES).

    Time is in days: frequency = order_days − 1, repeat_span_days = last − first order date, age_days =
    as_of − first order date. BG/NBD and MBG/NBD are both fitted; the rows use the one with the higher
    log-likelihood of the holdout's order days when fitted on the calibration period (without the
    calibration columns, or too few repeat customers before ``calibration_end``: the higher
    log-likelihood of the whole history, both having four parameters). Expected value is expected
    purchases × expected spend, undiscounted. Deterministic: rows are sorted by customer id before
    fitting and in the output.
    """
    features = _features(aggregates, as_of)
    ids, x, t_x, big_t, spend = features.ids, features.x, features.t_x, features.age, features.spend
    n = len(x)
    repeaters = int(np.count_nonzero(x))
    spenders = int(np.count_nonzero((x > 0) & (spend > 0)))
    empty = CUSTOMER_VALUE.schema.empty_table()  # type: ignore[union-attr]
    sizes: dict[str, float | int | str | bool | None] = {
        "customers": n,
        "repeat_customers": repeaters,
        "time_unit": "day",
        "as_of": as_of.isoformat(),
    }

    if repeaters < min_repeat_customers or spenders < min_repeat_customers:
        message = (
            f"not enough history for customer lifetime value: {repeaters} of {n} customers have a repeat "
            f"purchase ({spenders} of positive value), at least {min_repeat_customers} are needed; "
            "the models are fitted once more orders arrive"
        )
        purchase_facts = [
            ModelFact(name, MODEL_VERSION, {**sizes, "status": "insufficient_history", "message": message})
            for name in ("clv_bg_nbd", "clv_mbg_nbd")
        ]
        spend_fact = ModelFact(
            "clv_gamma_gamma",
            MODEL_VERSION,
            {**sizes, "spend_customers": spenders, "status": "insufficient_history", "message": message},
        )
        facts: tuple[ModelFact, ...] = (*purchase_facts, spend_fact)
        return CustomerValueResult("insufficient_history", empty, facts, message=message)

    bg = fit_bg_nbd(x, t_x, big_t, max_iterations=max_iterations)
    mbg = fit_mbg_nbd(x, t_x, big_t, max_iterations=max_iterations)
    gg = fit_gamma_gamma(x, spend, max_iterations=max_iterations)
    choice = _choose(bg, mbg, features, min_repeat_customers, max_iterations)
    purchases_fit = {"BG/NBD": bg, "MBG/NBD": mbg}[choice.chosen] if choice.chosen else None
    repeat_spend = (x > 0) & (spend > 0)
    # Gamma-Gamma assumes spend does not depend on how often a customer buys; report how far off.
    xs, ms = x[repeat_spend], spend[repeat_spend]
    varied = xs.std() > 0 and ms.std() > 0
    correlation = float(np.corrcoef(xs, ms)[0, 1]) if varied else float("nan")
    p_alive = purchases_fit.p_alive(x, t_x, big_t) if purchases_fit else np.full(n, np.nan)
    # Customers with one order whose P(alive) is 1 only because the model cannot see them leave.
    one_order = (x == 0) & (big_t > 0)
    certain = int(np.count_nonzero(one_order & (p_alive >= 1.0)))
    problems: list[str] = []
    if purchases_fit is None:
        problems.extend(f"{f.model} did not converge: {f.diagnostics.message}" for f in (bg, mbg))
    if not gg.converged:
        problems.append(f"Gamma-Gamma did not converge: {gg.diagnostics.message}")
    elif gg.q <= 1.0:
        problems.append(
            f"Gamma-Gamma q = {gg.q:.3g} ≤ 1 gives customers without a repeat purchase an infinite expected "
            "spend: the spend history is too heavy-tailed for this model"
        )
    gg_usable = gg.converged and gg.q > 1.0

    def purchase_fact(name: str, fit: BgNbdFit) -> ModelFact:
        metrics = {
            **sizes,
            **_fit_facts(fit, {"r": fit.r, "alpha": fit.alpha, "a": fit.a, "b": fit.b}, fit.converged),
            "chosen": fit.model == choice.chosen,
            "holdout_log_likelihood": _rounded(choice.holdout.get(fit.model, float("nan"))),
        }
        return ModelFact(name, MODEL_VERSION, metrics)

    facts = (
        purchase_fact("clv_bg_nbd", bg),
        purchase_fact("clv_mbg_nbd", mbg),
        ModelFact(
            "clv_purchase_model",
            MODEL_VERSION,
            {
                **sizes,
                "model": choice.chosen,
                "chosen_by": choice.chosen_by,
                **choice.facts,
                "one_order_customers": int(np.count_nonzero(one_order)),
                "one_order_customers_p_alive_1": certain,
            },
        ),
        ModelFact(
            "clv_gamma_gamma",
            MODEL_VERSION,
            {
                **sizes,
                "spend_customers": spenders,
                "frequency_spend_correlation": _rounded(correlation),
                **_fit_facts(gg, {"p": gg.p, "q": gg.q, "gamma": gg.gamma}, gg_usable),
            },
        ),
    )
    if problems or purchases_fit is None:
        message = "; ".join(problems) + ": the previous customer_value snapshot stays"
        # Each fact keeps its own model's status; the message says why nothing is written.
        facts = tuple(ModelFact(f.name, f.version, {**f.metrics, "message": message}) for f in facts)
        return CustomerValueResult("fit_failed", empty, facts, bg, gg, message, mbg, choice.chosen)

    expected_spend = gg.expected_spend(x, np.where(repeat_spend, spend, 0.0))
    # A repeat customer whose repeat orders were all free has spend information the model cannot
    # take (z̄ = 0 has no Gamma density): their expected spend is unknown, not the population mean.
    expected_spend = np.where((x > 0) & ~repeat_spend, np.nan, expected_spend)
    columns: dict[str, pa.Array] = {
        "customer_id": ids,
        "frequency": pa.array(x.astype(np.int64)),
        "repeat_span_days": pa.array(t_x.astype(np.int64)),
        "age_days": pa.array(big_t.astype(np.int64)),
        "mean_repeat_spend": pa.array(np.where(x > 0, spend, np.nan), from_pandas=True),
        "p_alive": pa.array(p_alive),
    }
    purchases = {h: purchases_fit.expected_purchases(float(h), x, t_x, big_t) for h in HORIZONS_DAYS}
    for h in HORIZONS_DAYS:
        columns[f"expected_purchases_{h}d"] = pa.array(purchases[h])
    columns["expected_spend"] = pa.array(expected_spend, from_pandas=True)
    for h in HORIZONS_DAYS:
        columns[f"expected_value_{h}d"] = pa.array(purchases[h] * expected_spend, from_pandas=True)
    columns["as_of"] = pa.repeat(pa.scalar(as_of, pa.date32()), n)
    table = pa.table(columns).cast(CUSTOMER_VALUE.schema)
    return CustomerValueResult("fitted", table, facts, bg, gg, "", mbg, choice.chosen)


def _choose(
    bg: BgNbdFit, mbg: BgNbdFit, features: _Features, min_repeat_customers: int, max_iterations: int
) -> _Choice:
    """BG/NBD or MBG/NBD: the better predictor of the holdout among the models that converged."""
    converged: list[PurchaseModel] = [f.model for f in (bg, mbg) if f.converged]
    whole = {bg.model: bg.log_likelihood, mbg.model: mbg.log_likelihood}
    split = features.split
    reason = ""
    if split is None:
        reason = "the aggregates have no calibration split"
    elif split.holdout_days < 1:
        reason = "the holdout period is empty"
    elif int(np.count_nonzero(split.x)) < min_repeat_customers:
        reason = (
            f"{int(np.count_nonzero(split.x))} customers had a repeat purchase by the end of the calibration "
            f"period, at least {min_repeat_customers} are needed"
        )
    facts: dict[str, float | int | str | bool | None] = {}
    holdout: dict[PurchaseModel, float] = {}
    if split is not None:
        facts = {
            "calibration_end": split.calibration_end.isoformat(),
            "holdout_days": split.holdout_days,
            "holdout_customers": len(split.x),
            "holdout_order_days": int(split.holdout.sum()),
        }
    if not reason and split is not None:
        for whole_fit in (bg, mbg):
            calibrated = _fit_purchases(
                split.x, split.t_x, split.age, max_iterations, modified=whole_fit.modified, warm=whole_fit
            )
            if not calibrated.converged:
                reason = (
                    f"{calibrated.model} did not converge on the calibration period ({calibrated.diagnostics.message})"
                )
                break
            scores = calibrated.holdout_log_likelihood(split.x, split.t_x, split.age, split.holdout, split.holdout_days)
            holdout[calibrated.model] = float(scores.sum())
    if reason:
        holdout = {}
    for model, score in holdout.items():
        facts[f"holdout_log_likelihood_{_slug(model)}"] = _rounded(score)
    for model, score in whole.items():
        facts[f"log_likelihood_{_slug(model)}"] = _rounded(score)
    if not converged:
        return _Choice(None, "none: neither model converged on the whole history", holdout, facts)
    if holdout:
        ranked = sorted(converged, key=lambda m: (-holdout[m], m))
        return _Choice(ranked[0], "held-out log-likelihood", holdout, facts)
    ranked = sorted(converged, key=lambda m: (-whole[m], m))
    return _Choice(ranked[0], f"log-likelihood of the whole history (no holdout comparison: {reason})", holdout, facts)


def _slug(model: PurchaseModel) -> str:
    return model.lower().replace("/", "_")


def _fit_facts(
    fit: BgNbdFit | GammaGammaFit, params: Mapping[str, float], usable: bool
) -> dict[str, float | int | str | bool | None]:
    d = fit.diagnostics
    return {
        "status": "fitted" if usable else "fit_failed",
        "method": d.method,
        "fit_customers": fit.n_customers,
        **{k: _rounded(v) for k, v in params.items()},
        "log_likelihood": _rounded(fit.log_likelihood),
        "converged": d.converged,
        "iterations": d.iterations,
        "gradient_norm": float(f"{d.gradient_norm:.3g}"),
        "optimizer_message": d.message,
    }


def _rounded(value: float) -> float | None:
    return None if not np.isfinite(value) else float(f"{value:.6g}")


def _features(aggregates: pa.Table, as_of: date) -> _Features:
    """Customer ids (sorted) with x, t_x, T in days, the mean spend per repeat order day, and the split."""
    missing = [c for c in _REQUIRED_AGGREGATES if c not in aggregates.column_names]
    if missing:
        raise ClvInputError(
            f"customer aggregates lack {', '.join(missing)}: pass one row per customer with "
            f"{', '.join(_REQUIRED_AGGREGATES)}"
        )
    given = [c for c in _CALIBRATION_AGGREGATES if c in aggregates.column_names]
    if given and len(given) != len(_CALIBRATION_AGGREGATES):
        raise ClvInputError(
            f"customer aggregates have {', '.join(given)} but not all of {', '.join(_CALIBRATION_AGGREGATES)}: "
            "pass the calibration split whole or not at all"
        )
    names = [c for c in CUSTOMER_AGGREGATES.names if c in aggregates.column_names]
    try:
        table = aggregates.select(names).cast(pa.schema([CUSTOMER_AGGREGATES.field(c) for c in names]))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ClvInputError(
            f"customer aggregates have a column of the wrong type ({exc}): see CUSTOMER_AGGREGATES"
        ) from exc
    for c in _REQUIRED_AGGREGATES:
        nulls = table.column(c).null_count
        if nulls:
            raise ClvInputError(f"customer aggregates have {nulls} null {c} values: every customer needs one")
    table = table.take(pc.sort_indices(table, [("customer_id", "ascending")]))
    ids = table.column("customer_id").combine_chunks()
    if len(pc.unique(ids)) != len(ids):
        raise ClvInputError("customer aggregates repeat a customer_id: aggregate to one row per customer")

    def days(column: str) -> np.ndarray:
        return table.column(column).combine_chunks().view(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)

    first, last = days("first_order_date"), days("last_order_date")
    as_of_day = (as_of - _EPOCH).days
    order_days = table.column("order_days").to_numpy().astype(np.int64)
    total = table.column("total_amount").to_numpy().astype(float)

    def reject(mask: np.ndarray, what: str) -> None:
        if mask.any():
            example = ids[int(np.argmax(mask))].as_py()
            raise ClvInputError(f"{int(mask.sum())} customers (for example {example!r}) {what}")

    reject(last < first, "have a last order before their first: check the aggregate's min/max dates")
    reject(
        last > as_of_day, f"have an order after as_of {as_of.isoformat()}: as_of must be the newest order date or later"
    )
    reject(order_days < 1, "have fewer than one order day: customers without orders do not belong in the aggregates")
    reject(order_days - 1 > last - first, "have more distinct order days than days between first and last order")
    reject(~np.isfinite(total) | (total < 0), "have a missing or negative total_amount")

    x = (order_days - 1).astype(float)
    if "first_day_amount" in table.column_names:
        first_day = table.column("first_day_amount").to_numpy(zero_copy_only=False).astype(float)
        reject(
            np.isnan(first_day) | (first_day < 0) | (first_day > total + 1e-9 * np.abs(total)),
            "have a missing or negative first_day_amount, or one above total_amount",
        )
        repeat_total = np.maximum(total - first_day, 0.0)
        spend = np.divide(repeat_total, x, out=np.zeros_like(total), where=x > 0)
    else:
        # Without the first day's amount, every order day's mean stands in for the repeat mean.
        spend = total / order_days
    split = None
    if given:
        ends = pc.unique(table.column("calibration_end").combine_chunks().drop_null())
        if len(ends) != 1 or table.column("calibration_end").null_count:
            raise ClvInputError(
                f"customer aggregates have {len(ends)} distinct calibration_end dates and "
                f"{table.column('calibration_end').null_count} nulls: the split is one date for every customer"
            )
        end = ends[0].as_py()
        end_day = (end - _EPOCH).days
        if end_day > as_of_day:
            raise ClvInputError(
                f"customer aggregates have calibration_end {end.isoformat()} after as_of {as_of.isoformat()}: "
                "the holdout is the days after calibration_end up to as_of"
            )
        cal_days = table.column("calibration_order_days").to_numpy(zero_copy_only=False)
        cal_days = np.nan_to_num(cal_days.astype(float), nan=0.0).astype(np.int64)
        # Null for customers whose first order came after calibration_end; they are left out below.
        cal_last = np.where(
            pc.is_null(table.column("calibration_last_order_date")).to_numpy(zero_copy_only=False),
            first,
            pc.fill_null(table.column("calibration_last_order_date"), _EPOCH)
            .combine_chunks()
            .view(pa.int32())
            .to_numpy(zero_copy_only=False),
        )
        known = first <= end_day
        reject(
            known & ((cal_days < 1) | (cal_days > order_days) | (cal_last < first) | (cal_last > end_day)),
            "have calibration order days or a last calibration order date that do not fit their orders "
            "(counted on or before calibration_end)",
        )
        split = _Split(
            end,
            as_of_day - end_day,
            (cal_days[known] - 1).astype(float),
            (cal_last[known] - first[known]).astype(float),
            (end_day - first[known]).astype(float),
            (order_days[known] - cal_days[known]).astype(float),
        )
    return _Features(ids, x, (last - first).astype(float), (as_of_day - first).astype(float), spend, split)


_EPOCH = date(1970, 1, 1)


__all__ = [
    "CUSTOMER_AGGREGATES",
    "CUSTOMER_VALUE",
    "HORIZONS_DAYS",
    "MIN_REPEAT_CUSTOMERS",
    "BgNbdFit",
    "ClvInputError",
    "CustomerValueResult",
    "FitDiagnostics",
    "GammaGammaFit",
    "PurchaseModel",
    "bg_nbd_expected_purchases",
    "bg_nbd_log_likelihood",
    "bg_nbd_p_alive",
    "customer_value",
    "fit_bg_nbd",
    "fit_gamma_gamma",
    "fit_mbg_nbd",
    "gamma_gamma_log_likelihood",
    "mbg_nbd_expected_purchases",
    "mbg_nbd_log_likelihood",
    "mbg_nbd_p_alive",
]
