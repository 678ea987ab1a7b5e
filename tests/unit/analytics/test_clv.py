"""Customer lifetime value: published CDNOW parameters, recovery and closed forms against simulation, bad input."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from scipy.optimize import approx_fprime
from scipy.special import hyp2f1
from scipy.stats import chi2

from analytics.clv import (
    CUSTOMER_VALUE,
    BgNbdFit,
    ClvInputError,
    FitDiagnostics,
    _bg_nbd_objective,
    _gamma_gamma_objective,
    bg_nbd_expected_purchases,
    bg_nbd_log_likelihood,
    bg_nbd_p_alive,
    customer_value,
    fit_bg_nbd,
    fit_gamma_gamma,
    fit_mbg_nbd,
    gamma_gamma_log_likelihood,
    mbg_nbd_expected_purchases,
    mbg_nbd_log_likelihood,
    mbg_nbd_p_alive,
)

from .conftest import assert_matches_spec

CDNOW = Path(__file__).parents[2] / "data" / "cdnow_customers_summary_with_transactions.csv"
AS_OF = date(2024, 6, 30)


def two_figures(value: float) -> float:
    return float(f"{value:.2g}")


@pytest.fixture(scope="module")
def cdnow() -> dict[str, np.ndarray]:
    table = pa.csv.read_csv(CDNOW)
    return {name: table.column(name).to_numpy().astype(float) for name in ("x", "t_x", "T", "zbar")}


# --- simulation: the BG/NBD and Gamma-Gamma stories told directly, independent of analytics.clv -----


def simulate_bg_nbd(
    rng: np.random.Generator, n: int, r: float, alpha: float, a: float, b: float, age: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each customer's (x, t_x) over (0, T], with their latent rate, dropout chance and alive flag.

    λ ~ Gamma(r, rate α), p ~ Beta(a, b); exponential gaps between purchases; after each repeat
    purchase the customer leaves with probability p.
    """
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    count, last, alive = _purchases(rng, lam, p, np.ones(n, bool), age)
    return count, last, lam, p, alive


def simulate_mbg_nbd(
    rng: np.random.Generator, n: int, r: float, alpha: float, a: float, b: float, age: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """As :func:`simulate_bg_nbd`, but the customer may also leave right after the first purchase (MBG/NBD)."""
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    count, last, alive = _purchases(rng, lam, p, rng.random(n) >= p, age)
    return count, last, lam, p, alive


def _purchases(
    rng: np.random.Generator, lam: np.ndarray, p: np.ndarray, alive: np.ndarray, horizon: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(lam)
    horizon = np.broadcast_to(np.asarray(horizon, dtype=float), (n,))
    count, last, clock = np.zeros(n), np.zeros(n), np.zeros(n)
    alive = alive.copy()
    buying = alive.copy()
    while buying.any():
        i = np.flatnonzero(buying)
        at = clock[i] + rng.exponential(1.0, len(i)) / lam[i]
        beyond = at > horizon[i]
        buying[i[beyond]] = False
        bought = i[~beyond]
        clock[bought] = last[bought] = at[~beyond]
        count[bought] += 1
        leaves = bought[rng.random(len(bought)) < p[bought]]
        alive[leaves] = buying[leaves] = False
    return count, last, alive


def simulate_spend(
    rng: np.random.Generator, x: np.ndarray, p: float, q: float, gamma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mean of x transaction values (0 when x = 0) and each customer's true mean spend p/ν."""
    nu = rng.gamma(q, 1.0 / gamma, len(x))
    # The sum of x Gamma(p, rate ν) values is Gamma(p·x, rate ν).
    total = np.where(x > 0, rng.gamma(np.maximum(p * x, 1e-12), 1.0 / nu), 0.0)
    return np.divide(total, x, out=np.zeros_like(total), where=x > 0), p / nu


# --- published results --------------------------------------------------------------------------


def test_bg_nbd_on_cdnow_matches_the_published_parameters(cdnow: dict[str, np.ndarray]) -> None:
    # GIVEN the 2,357-customer CDNOW sample in weeks WHEN BG/NBD is fitted
    fit = fit_bg_nbd(cdnow["x"], cdnow["t_x"], cdnow["T"])
    # THEN it finds Fader, Hardie & Lee's (2005) estimates and log-likelihood
    assert fit.converged, fit.diagnostics
    assert (two_figures(fit.r), two_figures(fit.alpha), two_figures(fit.a), two_figures(fit.b)) == (
        two_figures(0.243),
        two_figures(4.414),
        two_figures(0.793),
        two_figures(2.426),
    )
    assert fit.log_likelihood == pytest.approx(-9582.4, abs=0.1)
    assert fit.n_customers == 2357
    assert "L-BFGS-B" in fit.method
    assert fit.iterations > 0


def test_conditional_expectation_matches_the_papers_worked_example(cdnow: dict[str, np.ndarray]) -> None:
    # FHL 2005 section 5: a customer with x = 2, t_x = 30.43, T = 38.86 is expected to make 1.226
    # purchases in the next 39 weeks under the published parameters.
    expected = bg_nbd_expected_purchases(
        0.243, 4.414, 0.793, 2.426, 39.0, np.array([2.0]), np.array([30.43]), np.array([38.86])
    )
    assert expected[0] == pytest.approx(1.226, abs=0.001)
    fit = fit_bg_nbd(cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert fit.expected_purchases(39.0, np.array([2.0]), np.array([30.43]), np.array([38.86]))[0] == pytest.approx(
        1.226, abs=0.002
    )


def test_gamma_gamma_on_cdnow_matches_the_documented_parameters(cdnow: dict[str, np.ndarray]) -> None:
    # GIVEN the same sample's mean repeat spend WHEN Gamma-Gamma is fitted on the 946 repeat buyers
    fit = fit_gamma_gamma(cdnow["x"], cdnow["zbar"])
    # THEN p, q, γ are lifetimes' documented 6.25, 3.74, 15.44
    assert fit.converged, fit.diagnostics
    assert fit.n_customers == 946
    assert (two_figures(fit.p), two_figures(fit.q), two_figures(fit.gamma)) == (6.2, 3.7, 15.0)
    assert fit.p == pytest.approx(6.25, abs=0.01)
    assert fit.q == pytest.approx(3.74, abs=0.01)
    assert fit.gamma == pytest.approx(15.44, abs=0.02)


#: MBG/NBD on CDNOW as BTYDplus (R, github.com/mplatzer/BTYDplus) estimates it, quoted in lifetimes' tests.
BTYDPLUS_MBG_CDNOW = (0.525, 6.183, 0.891, 1.614)
#: Customers (weeks) and what lifetimes 0.11.3's ModifiedBetaGeoFitter gives them at BTYDPLUS_MBG_CDNOW,
#: computed outside this project (lifetimes is not one of its dependencies): P(alive), expected
#: purchases in the next 39 weeks, log-likelihood; and a new customer's expected purchases in 1, 39, 78 weeks.
MBG_POINTS = {
    "x": np.array([0.0, 0.0, 1.0, 2.0, 5.0, 10.0]),
    "t_x": np.array([0.0, 0.0, 1.71, 30.43, 20.0, 35.0]),
    "T": np.array([38.86, 10.0, 38.86, 38.86, 38.86, 38.86]),
}
LIFETIMES_MBG_P_ALIVE = [0.3897350809187629, 0.5222337327821048, 0.17083648431040802, 0.7062022651184873,
                         0.27036864057101545, 0.8354376104121233]  # fmt: skip
LIFETIMES_MBG_EXPECTED_39 = [0.15401274667514553, 0.48275059815976407, 0.18883654136434078, 1.2629606232673432,
                             1.021615018822985, 5.880124052888072]  # fmt: skip
LIFETIMES_MBG_LOG_LIKELIHOOD = [-0.5398374635310146, -0.2950659392517183, -4.460360612584317, -9.48555131453393,
                                -16.70279977284407, -27.32122992993207]  # fmt: skip
LIFETIMES_MBG_NEW = {1.0: 0.053084795263698685, 39.0: 1.182953665597168, 78.0: 1.8047575775531313}


def test_mbg_nbd_on_cdnow_matches_btydplus_and_lifetimes(cdnow: dict[str, np.ndarray]) -> None:
    # GIVEN the CDNOW sample WHEN MBG/NBD is fitted
    fit = fit_mbg_nbd(cdnow["x"], cdnow["t_x"], cdnow["T"])
    # THEN it finds BTYDplus's estimates, and lifetimes' log-likelihood at its own optimum (-9582.1327)
    assert fit.converged, fit.diagnostics
    assert fit.model == "MBG/NBD" and fit.modified
    np.testing.assert_allclose([fit.r, fit.alpha, fit.a, fit.b], BTYDPLUS_MBG_CDNOW, atol=1e-3)
    assert fit.log_likelihood == pytest.approx(-9582.1327, abs=0.01)
    # AND a customer with one purchase 39 weeks ago is no longer certain to be alive
    assert fit.p_alive(np.zeros(1), np.zeros(1), np.array([38.86]))[0] == pytest.approx(0.3897, abs=1e-3)


def test_mbg_nbd_formulas_agree_with_lifetimes() -> None:
    r, alpha, a, b = BTYDPLUS_MBG_CDNOW
    x, t_x, big_t = MBG_POINTS["x"], MBG_POINTS["t_x"], MBG_POINTS["T"]
    np.testing.assert_allclose(mbg_nbd_p_alive(r, alpha, a, b, x, t_x, big_t), LIFETIMES_MBG_P_ALIVE, rtol=1e-9)
    np.testing.assert_allclose(
        mbg_nbd_expected_purchases(r, alpha, a, b, 39.0, x, t_x, big_t), LIFETIMES_MBG_EXPECTED_39, rtol=1e-8
    )
    np.testing.assert_allclose(
        mbg_nbd_log_likelihood(r, alpha, a, b, x, t_x, big_t), LIFETIMES_MBG_LOG_LIKELIHOOD, rtol=1e-9
    )
    fit = BgNbdFit(r, alpha, a, b, 0.0, 0, FitDiagnostics(True, "", 0, 0.0, ""), modified=True)
    for t, expected in LIFETIMES_MBG_NEW.items():
        assert fit.expected_purchases_new(t) == pytest.approx(expected, rel=1e-8)


def test_mbg_nbd_gradient_agrees_with_finite_differences(cdnow: dict[str, np.ndarray]) -> None:
    distinct_x, x_index = np.unique(cdnow["x"], return_inverse=True)
    args = (distinct_x, cdnow["t_x"], cdnow["T"], np.ones(len(cdnow["x"])), x_index, 1)
    at = np.log([0.5, 3.0, 0.7, 2.0])
    numeric = approx_fprime(at, lambda v: _bg_nbd_objective(v, *args)[0], 1e-7)
    np.testing.assert_allclose(_bg_nbd_objective(at, *args)[1], numeric, rtol=1e-4, atol=1e-6)
    per_customer = mbg_nbd_log_likelihood(0.5, 3.0, 0.7, 2.0, cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert _bg_nbd_objective(at, *args)[0] == pytest.approx(-per_customer.mean(), rel=1e-12)


def test_customers_alike_are_fitted_as_one_weighted_group(cdnow: dict[str, np.ndarray]) -> None:
    # GIVEN CDNOW with every customer three times: the same distinct (x, t_x, T) and (x, z̄) groups
    tripled = {name: np.tile(values, 3) for name, values in cdnow.items()}
    # WHEN both models are fitted
    bg = fit_bg_nbd(tripled["x"], tripled["t_x"], tripled["T"])
    gg = fit_gamma_gamma(tripled["x"], tripled["zbar"])
    # THEN the estimates are still the published ones, and the log-likelihoods count every customer
    assert bg.converged and gg.converged
    assert (two_figures(bg.r), two_figures(bg.alpha), two_figures(bg.a), two_figures(bg.b)) == (0.24, 4.4, 0.79, 2.4)
    assert bg.log_likelihood == pytest.approx(3 * -9582.4, abs=0.3) and bg.n_customers == 3 * 2357
    assert (gg.p, gg.q, gg.gamma) == (
        pytest.approx(6.25, abs=0.01),
        pytest.approx(3.74, abs=0.01),
        pytest.approx(15.44, abs=0.02),
    )
    assert gg.n_customers == 3 * 946


def test_analytic_gradients_agree_with_finite_differences(cdnow: dict[str, np.ndarray]) -> None:
    # The optimizer's convergence test trusts these gradients, so check them away from the optimum.
    distinct_x, x_index = np.unique(cdnow["x"], return_inverse=True)
    args = (distinct_x, cdnow["t_x"], cdnow["T"], np.ones(len(cdnow["x"])), x_index)
    at = np.log([0.5, 3.0, 0.7, 2.0])
    numeric = approx_fprime(at, lambda v: _bg_nbd_objective(v, *args)[0], 1e-7)
    np.testing.assert_allclose(_bg_nbd_objective(at, *args)[1], numeric, rtol=1e-4, atol=1e-6)
    # AND the objective is the mean of the published per-customer log-likelihood
    per_customer = bg_nbd_log_likelihood(0.5, 3.0, 0.7, 2.0, cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert _bg_nbd_objective(at, *args)[0] == pytest.approx(-per_customer.mean(), rel=1e-12)
    repeat = cdnow["x"] > 0
    x, m = cdnow["x"][repeat], cdnow["zbar"][repeat]
    distinct_x, x_index = np.unique(x, return_inverse=True)
    spend_args = (x, m, np.log(x * m), np.ones(len(x)), distinct_x, x_index)
    at = np.log([3.0, 2.0, 10.0])
    numeric = approx_fprime(at, lambda v: _gamma_gamma_objective(v, *spend_args)[0], 1e-7)
    np.testing.assert_allclose(_gamma_gamma_objective(at, *spend_args)[1], numeric, rtol=1e-4, atol=1e-6)
    # The objective leaves out Σ log z̄, constant in the parameters; with it, it is the mean log density.
    per_customer = gamma_gamma_log_likelihood(3.0, 2.0, 10.0, x, m)
    assert _gamma_gamma_objective(at, *spend_args)[0] + np.log(m).mean() == pytest.approx(
        -per_customer.mean(), rel=1e-12
    )


# --- closed forms against simulation ------------------------------------------------------------

TRUE_BG = {"r": 0.8, "alpha": 6.0, "a": 0.9, "b": 3.0}


@pytest.fixture(scope="module")
def simulated() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20240101)
    n = 20_000
    age = rng.uniform(20.0, 52.0, n)
    x, t_x, lam, p, alive = simulate_bg_nbd(rng, n, TRUE_BG["r"], TRUE_BG["alpha"], TRUE_BG["a"], TRUE_BG["b"], age)
    future, _, _ = _purchases(rng, lam, p, alive, 26.0)
    return {"x": x, "t_x": t_x, "T": age, "alive": alive, "future_26": future}


def test_bg_nbd_fit_recovers_the_parameters_it_was_simulated_with(simulated: dict[str, np.ndarray]) -> None:
    fit = fit_bg_nbd(simulated["x"], simulated["t_x"], simulated["T"])
    assert fit.converged, fit.diagnostics
    got = {"r": fit.r, "alpha": fit.alpha, "a": fit.a, "b": fit.b}
    for name, truth in TRUE_BG.items():
        assert got[name] == pytest.approx(truth, rel=0.15), name
    # The true parameters are not rejected by a likelihood-ratio test, and the fit is at least as likely.
    at_truth = bg_nbd_log_likelihood(*TRUE_BG.values(), simulated["x"], simulated["t_x"], simulated["T"]).sum()
    assert 0.0 <= fit.log_likelihood - at_truth < chi2.ppf(0.999, df=4) / 2


BINS = [(0, 0), (1, 1), (2, 3), (4, 7), (8, 10_000)]


@pytest.mark.parametrize(("low", "high"), BINS)
def test_conditional_expectation_matches_the_simulated_next_half_year(
    simulated: dict[str, np.ndarray], low: int, high: int
) -> None:
    # GIVEN customers simulated with known parameters, and their actual purchases in the next 26 weeks
    x, t_x, big_t = simulated["x"], simulated["t_x"], simulated["T"]
    chosen = (x >= low) & (x <= high)
    # WHEN eq. 10 predicts each one's purchases from (x, t_x, T) and the true parameters
    predicted = bg_nbd_expected_purchases(*TRUE_BG.values(), 26.0, x[chosen], t_x[chosen], big_t[chosen])
    # THEN the group's mean prediction is the mean of what they went on to buy, within 4 standard errors
    actual = simulated["future_26"][chosen]
    standard_error = actual.std(ddof=1) / np.sqrt(len(actual))
    assert abs(predicted.mean() - actual.mean()) < 4 * standard_error + 1e-3
    # AND P(alive) is the share still alive at T
    p_alive = bg_nbd_p_alive(*TRUE_BG.values(), x[chosen], t_x[chosen], big_t[chosen])
    share = simulated["alive"][chosen].mean()
    assert abs(p_alive.mean() - share) < 4 * np.sqrt(share * (1 - share) / chosen.sum()) + 1e-3


def test_unconditional_expectation_matches_simulated_new_customers() -> None:
    rng = np.random.default_rng(11)
    n = 50_000
    count, _, _, _, _ = simulate_bg_nbd(rng, n, *TRUE_BG.values(), np.full(n, 30.0))
    fit_like = bg_nbd_expected_purchases(*TRUE_BG.values(), 30.0, np.zeros(1), np.zeros(1), np.zeros(1))[0]
    assert abs(fit_like - count.mean()) < 4 * count.std(ddof=1) / np.sqrt(n)


def test_the_euler_transformed_2f1_equals_the_papers_form() -> None:
    # eq. 10 as printed, for moderate x where hyp2f1 is still accurate in the untransformed form.
    r, alpha, a, b, t = 0.243, 4.414, 0.793, 2.426, 39.0
    x = np.array([0.0, 1.0, 2.0, 5.0, 10.0])
    t_x = np.array([0.0, 10.0, 30.43, 20.0, 35.0])
    big_t = np.full(5, 38.86)
    z = t / (alpha + big_t + t)
    as_printed = (
        (a + b + x - 1)
        / (a - 1)
        * (1 - ((alpha + big_t) / (alpha + big_t + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z))
    )
    as_printed /= 1 + (x > 0) * a / np.maximum(b + x - 1, 1e-12) * ((alpha + big_t) / (alpha + t_x)) ** (r + x)
    np.testing.assert_allclose(bg_nbd_expected_purchases(r, alpha, a, b, t, x, t_x, big_t), as_printed, rtol=1e-9)


def test_gamma_gamma_recovers_its_parameters_and_predicts_true_mean_spend() -> None:
    rng = np.random.default_rng(5)
    n = 20_000
    x = rng.integers(0, 12, n).astype(float)
    mean_spend, true_mean = simulate_spend(rng, x, 6.0, 4.0, 15.0)
    fit = fit_gamma_gamma(x, mean_spend)
    assert fit.converged, fit.diagnostics
    assert (fit.p, fit.q, fit.gamma) == (
        pytest.approx(6.0, rel=0.1),
        pytest.approx(4.0, rel=0.1),
        pytest.approx(15.0, rel=0.15),
    )
    truth_ll = gamma_gamma_log_likelihood(6.0, 4.0, 15.0, x[x > 0], mean_spend[x > 0]).sum()
    assert 0.0 <= fit.log_likelihood - truth_ll < chi2.ppf(0.999, df=3) / 2
    # The conditional expectation of spend, averaged over customers alike in x, is their true mean.
    for low, high in [(0, 0), (1, 2), (3, 11)]:
        chosen = (x >= low) & (x <= high)
        predicted = fit.expected_spend(x[chosen], mean_spend[chosen])
        actual = true_mean[chosen]
        assert abs(predicted.mean() - actual.mean()) < 4 * actual.std(ddof=1) / np.sqrt(chosen.sum()) + 0.05


TRUE_MBG = {"r": 0.8, "alpha": 6.0, "a": 1.0, "b": 2.5}


def known_fit(params: dict[str, float], modified: bool) -> BgNbdFit:
    """A fit object at given parameters, to evaluate its formulas."""
    return BgNbdFit(*params.values(), 0.0, 0, FitDiagnostics(True, "", 0, 0.0, ""), modified=modified)


def test_mbg_nbd_fit_recovers_its_parameters_and_p_alive_of_one_order_customers() -> None:
    # GIVEN customers simulated by the MBG/NBD story (some leave right after their first purchase)
    rng = np.random.default_rng(7)
    n = 20_000
    age = rng.uniform(20.0, 52.0, n)
    x, t_x, _, _, alive = simulate_mbg_nbd(rng, n, *TRUE_MBG.values(), age)
    fit = fit_mbg_nbd(x, t_x, age)
    # THEN the fit finds the parameters
    assert fit.converged, fit.diagnostics
    for name, truth in TRUE_MBG.items():
        assert getattr(fit, name) == pytest.approx(truth, rel=0.15), name
    # AND P(alive) of the customers with one order is the share of them still alive (BG/NBD would say 1)
    once = x == 0
    share = alive[once].mean()
    assert share < 0.9
    p_alive = fit.p_alive(x[once], t_x[once], age[once]).mean()
    assert abs(p_alive - share) < 4 * np.sqrt(share * (1 - share) / once.sum()) + 0.01


@pytest.mark.parametrize("modified", [False, True])
def test_holdout_probabilities_sum_to_one_with_the_conditional_expectation_as_mean(modified: bool) -> None:
    # P(X(T, T+τ) = k | x, t_x, T) over k is a distribution whose mean is eq. 10 (Batislam's for MBG/NBD).
    fit = known_fit({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, modified)
    x, t_x, big_t = MBG_POINTS["x"], MBG_POINTS["t_x"], MBG_POINTS["T"]
    ks = np.arange(400.0)
    probabilities = np.array([np.exp(fit.holdout_log_likelihood(x, t_x, big_t, np.full(len(x), k), 39.0)) for k in ks])
    np.testing.assert_allclose(probabilities.sum(axis=0), 1.0, rtol=1e-9)
    expected = (bg_nbd_expected_purchases, mbg_nbd_expected_purchases)[modified](
        0.243, 4.414, 0.793, 2.426, 39.0, x, t_x, big_t
    )
    np.testing.assert_allclose(ks @ probabilities, expected, rtol=1e-6)


@pytest.mark.parametrize("modified", [False, True])
def test_holdout_probabilities_match_what_simulated_customers_went_on_to_buy(modified: bool) -> None:
    # GIVEN customers simulated over a calibration period, then over 26 more weeks
    rng = np.random.default_rng(13)
    n = 30_000
    truth = TRUE_MBG if modified else TRUE_BG
    age = rng.uniform(20.0, 52.0, n)
    x, t_x, lam, p, alive = (simulate_bg_nbd, simulate_mbg_nbd)[modified](rng, n, *truth.values(), age)
    future, _, _ = _purchases(rng, lam, p, alive, 26.0)
    fit = known_fit(truth, modified)
    # THEN for each count k, the mean predicted P(k more purchases) is the share that made k
    for k in range(4):
        predicted = np.exp(fit.holdout_log_likelihood(x, t_x, age, np.full(n, float(k)), 26.0)).mean()
        share = (future == k).mean()
        assert abs(predicted - share) < 4 * np.sqrt(share * (1 - share) / n), k


def aggregates_with_holdout(
    rng: np.random.Generator, n: int, truth: dict[str, float], modified: bool, holdout_days: int = 120
) -> tuple[pa.Table, date]:
    """Per-customer aggregates with a calibration split, from purchases simulated in days."""
    simulate = simulate_mbg_nbd if modified else simulate_bg_nbd
    age = rng.integers(60, 361, n).astype(float)
    x, t_x, lam, p, alive = simulate(rng, n, *truth.values(), age)
    future, future_last, _ = _purchases(rng, lam, p, alive, float(holdout_days))
    calibration_end = AS_OF - timedelta(days=holdout_days)
    # Whole days, later purchases on later days; customers whose purchases would share a day are left out.
    span = np.ceil(t_x)
    later = np.ceil(future_last)
    fits = (x <= span) & (future <= later)
    x, span, age, future, later = x[fits], span[fits], age[fits], future[fits], later[fits]
    first = np.array([(calibration_end - timedelta(days=int(d))).toordinal() for d in age])
    calibration_last = first + span
    last = np.where(future > 0, first + age + later, calibration_last)

    def dates(ordinals: np.ndarray) -> pa.Array:
        return pa.array([date.fromordinal(int(d)) for d in ordinals], pa.date32())

    table = pa.table(
        {
            "customer_id": [f"C{i:05d}" for i in range(len(x))],
            "first_order_date": dates(first),
            "last_order_date": dates(last),
            "order_days": pa.array((1 + x + future).astype(np.int64)),
            "total_amount": pa.array(20.0 * (1 + x + future) + rng.gamma(2.0, 5.0, len(x))),
            "calibration_order_days": pa.array((1 + x).astype(np.int64)),
            "calibration_last_order_date": dates(calibration_last),
            "calibration_end": pa.array([calibration_end] * len(x), pa.date32()),
        }
    )
    return table, date.fromordinal(int(last.max()))


@pytest.mark.parametrize("modified", [False, True])
def test_the_model_that_predicts_the_holdout_better_is_chosen(modified: bool) -> None:
    # GIVEN a history made by BG/NBD or by MBG/NBD (in days), with the last 120 days held out
    truth = {"r": 0.8, "alpha": 40.0, "a": 1.0, "b": 2.5} if modified else {"r": 0.8, "alpha": 40.0, "a": 0.9, "b": 3.0}
    aggregates, as_of = aggregates_with_holdout(np.random.default_rng(29), 20_000, truth, modified)
    # WHEN customer_value fits both
    result = customer_value(aggregates, as_of)
    facts = {f.name: f.metrics for f in result.facts}
    choice = facts["clv_purchase_model"]
    # THEN the model that made the history predicts its holdout better, is chosen, and says so
    made, other = ("MBG/NBD", "BG/NBD") if modified else ("BG/NBD", "MBG/NBD")
    assert result.status == "fitted" and result.chosen == made, choice
    assert choice["model"] == made and choice["chosen_by"] == "held-out log-likelihood"
    assert choice["holdout_days"] == 120 and choice["calibration_end"] == str(as_of - timedelta(days=120))
    slug = {"BG/NBD": "bg_nbd", "MBG/NBD": "mbg_nbd"}
    assert choice[f"holdout_log_likelihood_{slug[made]}"] > choice[f"holdout_log_likelihood_{slug[other]}"]
    assert facts[f"clv_{slug[made]}"]["chosen"] is True and facts[f"clv_{slug[other]}"]["chosen"] is False
    # AND the rows' P(alive) is the chosen model's: 1 for every one-order customer under BG/NBD only
    once = pc.equal(result.table.column("frequency"), 0)
    p_alive_once = pc.filter(result.table.column("p_alive"), once).to_numpy()
    assert (p_alive_once == 1.0).all() != modified
    assert choice["one_order_customers_p_alive_1"] == (0 if modified else choice["one_order_customers"])


# --- the customer_value table -------------------------------------------------------------------


def aggregates_from_weeks(x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray, zbar: np.ndarray) -> pa.Table:
    """Per-customer aggregates a SQL query would return for customers summarised in weeks."""
    age_days = np.round(big_t * 7).astype(int)
    recency_days = np.round(t_x * 7).astype(int)
    first = [AS_OF - timedelta(days=int(d)) for d in age_days]
    return pa.table(
        {
            "customer_id": [f"C{i:05d}" for i in range(len(x))],
            "first_order_date": pa.array(first, pa.date32()),
            "last_order_date": pa.array(
                [f + timedelta(days=int(r)) for f, r in zip(first, recency_days, strict=True)], pa.date32()
            ),
            "order_days": pa.array((x + 1).astype(np.int64)),
            "total_amount": pa.array(10.0 + x * zbar),
            "first_day_amount": pa.array(np.full(len(x), 10.0)),
        }
    )


@pytest.fixture(scope="module")
def cdnow_value(cdnow: dict[str, np.ndarray]):  # type: ignore[no-untyped-def]
    return customer_value(aggregates_from_weeks(cdnow["x"], cdnow["t_x"], cdnow["T"], cdnow["zbar"]), AS_OF)


def test_customer_value_in_days_has_the_weekly_fit_with_alpha_times_seven(cdnow_value) -> None:  # type: ignore[no-untyped-def]
    # GIVEN CDNOW as per-customer order dates (days) WHEN the table is built
    result = cdnow_value
    assert result.status == "fitted" and not result.keep_previous
    facts = {f.name: f.metrics for f in result.facts}
    # THEN the shape parameters are the paper's and the rate's scale is in days
    bg = facts["clv_bg_nbd"]
    assert (two_figures(bg["r"]), two_figures(bg["a"]), two_figures(bg["b"])) == (0.24, 0.79, 2.4)
    assert bg["alpha"] == pytest.approx(4.414 * 7, rel=0.01)
    assert bg["converged"] is True and bg["customers"] == 2357 and bg["time_unit"] == "day"
    assert isinstance(bg["log_likelihood"], float) and bg["gradient_norm"] < 1e-4
    gg = facts["clv_gamma_gamma"]
    assert (gg["p"], gg["q"], gg["gamma"]) == (
        pytest.approx(6.25, abs=0.01),
        pytest.approx(3.74, abs=0.01),
        pytest.approx(15.44, abs=0.02),
    )
    assert gg["fit_customers"] == 946
    # AND MBG/NBD is fitted beside BG/NBD; with no holdout, the whole history's likelihood chose it
    mbg = facts["clv_mbg_nbd"]
    assert (mbg["r"], mbg["a"], mbg["b"]) == (
        pytest.approx(0.525, abs=1e-3),
        pytest.approx(0.891, abs=1e-3),
        pytest.approx(1.614, abs=1e-3),
    )
    assert mbg["chosen"] is True and bg["chosen"] is False
    choice = facts["clv_purchase_model"]
    assert choice["model"] == "MBG/NBD"
    assert "whole history" in str(choice["chosen_by"]) and "no calibration split" in str(choice["chosen_by"])
    assert choice["one_order_customers"] == 1411 and choice["one_order_customers_p_alive_1"] == 0


def test_customer_value_rows_answer_what_a_marketer_asks(cdnow_value) -> None:  # type: ignore[no-untyped-def]
    table = cdnow_value.table
    assert_matches_spec(table, CUSTOMER_VALUE)
    assert table.num_rows == 2357
    assert table.column("customer_id").to_pylist() == sorted(table.column("customer_id").to_pylist())
    assert pc.all(pc.equal(table.column("as_of"), pa.scalar(AS_OF, pa.date32()))).as_py()
    rows = {r["customer_id"]: r for r in table.to_pylist()}
    # The paper's customer 1 (x = 2, t_x = 30.43 w, T = 38.86 w): 1.226 purchases in 39 weeks ≈ 273 days.
    first = rows["C00000"]
    assert (first["frequency"], first["repeat_span_days"], first["age_days"]) == (2, 213, 272)
    assert first["mean_repeat_spend"] == pytest.approx(22.35)
    p30, p90, p365 = (first[f"expected_purchases_{h}d"] for h in (30, 90, 365))
    assert 0 < p30 < p90 < p365
    assert first["expected_value_365d"] == pytest.approx(p365 * first["expected_spend"])
    # A one-time buyer (T = 272 days) gets MBG/NBD's P(alive), chosen on the whole history's likelihood
    # (the aggregates have no calibration split), and the population's mean spend p·γ/(q−1).
    once = rows["C00002"]
    assert cdnow_value.chosen == "MBG/NBD"
    assert once["frequency"] == 0 and once["mean_repeat_spend"] is None
    assert once["p_alive"] == pytest.approx(LIFETIMES_MBG_P_ALIVE[0], abs=1e-3)
    assert once["expected_spend"] == pytest.approx(6.25 * 15.44 / (3.74 - 1), rel=0.01)
    p_alive = table.column("p_alive").to_numpy()
    assert ((p_alive >= 0) & (p_alive <= 1)).all()


def test_customer_value_does_not_depend_on_row_order(cdnow: dict[str, np.ndarray], cdnow_value) -> None:  # type: ignore[no-untyped-def]
    aggregates = aggregates_from_weeks(cdnow["x"], cdnow["t_x"], cdnow["T"], cdnow["zbar"])
    shuffled = aggregates.take(np.random.default_rng(1).permutation(aggregates.num_rows))
    again = customer_value(shuffled, AS_OF)
    assert again.table.equals(cdnow_value.table)
    assert again.facts == cdnow_value.facts


def test_without_first_day_amount_every_order_day_counts_towards_spend(cdnow: dict[str, np.ndarray]) -> None:
    # GIVEN repeat buyers whose first day cost as much as their mean repeat day, and no first_day_amount
    x, zbar = cdnow["x"], cdnow["zbar"]
    aggregates = aggregates_from_weeks(x, cdnow["t_x"], cdnow["T"], zbar)
    total = np.where(x > 0, (x + 1) * zbar, 10.0)
    aggregates = aggregates.set_column(4, "total_amount", pa.array(total)).drop_columns("first_day_amount")
    # THEN the mean over all order days stands in for the repeat mean, and the spend fit is unchanged
    result = customer_value(aggregates, AS_OF)
    first = result.table.to_pylist()[0]
    assert first["mean_repeat_spend"] == pytest.approx(22.35)
    assert result.gamma_gamma is not None and result.gamma_gamma.p == pytest.approx(6.25, abs=0.01)


# --- bad input ----------------------------------------------------------------------------------


def few_customers(repeaters: int, one_timers: int = 30) -> pa.Table:
    x = np.concatenate([np.full(repeaters, 2.0), np.zeros(one_timers)])
    t_x = np.concatenate([np.full(repeaters, 3.0), np.zeros(one_timers)])
    return aggregates_from_weeks(x, t_x, np.full(len(x), 10.0), np.where(x > 0, 20.0, 0.0))


@pytest.mark.parametrize("repeaters", [0, 19])
def test_too_few_repeat_customers_gives_a_fact_and_no_rows(repeaters: int) -> None:
    result = customer_value(few_customers(repeaters), AS_OF)
    assert result.status == "insufficient_history" and result.keep_previous
    assert result.table.num_rows == 0 and result.table.schema.equals(CUSTOMER_VALUE.schema)
    assert result.bg_nbd is None and result.gamma_gamma is None
    facts = {f.name: f.metrics for f in result.facts}
    assert facts["clv_bg_nbd"]["status"] == "insufficient_history"
    assert facts["clv_bg_nbd"]["repeat_customers"] == repeaters
    assert f"{repeaters} of {repeaters + 30} customers have a repeat purchase" in str(facts["clv_bg_nbd"]["message"])
    assert "at least 20" in result.message
    assert "r" not in facts["clv_bg_nbd"]


def test_no_customers_at_all_gives_a_fact_not_a_crash() -> None:
    result = customer_value(few_customers(0, one_timers=0), AS_OF)
    assert result.status == "insufficient_history" and result.table.num_rows == 0
    assert {f.name: f.metrics for f in result.facts}["clv_bg_nbd"]["customers"] == 0


def test_a_fit_that_runs_out_of_iterations_is_reported_and_keeps_the_previous_snapshot(
    cdnow: dict[str, np.ndarray],
) -> None:
    result = customer_value(
        aggregates_from_weeks(cdnow["x"], cdnow["t_x"], cdnow["T"], cdnow["zbar"]), AS_OF, max_iterations=2
    )
    assert result.status == "fit_failed" and result.keep_previous and result.table.num_rows == 0
    bg = {f.name: f.metrics for f in result.facts}["clv_bg_nbd"]
    assert bg["converged"] is False and bg["status"] == "fit_failed"
    assert {f.name: f.metrics for f in result.facts}["clv_gamma_gamma"]["converged"] is False
    assert bg["iterations"] == 2 and bg["gradient_norm"] > 1e-4
    assert (
        "BG/NBD did not converge" in str(bg["message"]) and "previous customer_value snapshot stays" in result.message
    )


def test_customers_buying_like_clockwork_are_not_fitted_with_a_runaway_parameter() -> None:
    # GIVEN every customer ordering exactly once a week: no Poisson-Gamma process explains that
    age = np.arange(5, 45, dtype=float).repeat(3)
    x = np.floor(age)
    result = customer_value(aggregates_from_weeks(x, x, age, np.full(len(x), 20.0)), AS_OF)
    # THEN the fit is reported as failed, naming the parameter the history cannot pin down
    assert result.status == "fit_failed" and result.table.num_rows == 0
    assert result.bg_nbd is not None and not result.bg_nbd.converged
    assert "reached their bounds" in result.bg_nbd.diagnostics.message


def shifted(dates: pa.ChunkedArray, days: int) -> pa.Array:
    return pa.array(dates.combine_chunks().view(pa.int32()).to_numpy() + days).view(pa.date32())


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda t: t.drop_columns("order_days"), "customer aggregates lack order_days"),
        (
            lambda t: t.set_column(2, "last_order_date", shifted(t.column("first_order_date"), -1)),
            "last order before their first",
        ),
        (lambda t: t.set_column(3, "order_days", pa.array(np.zeros(t.num_rows, np.int64))), "fewer than one order day"),
        (
            lambda t: t.set_column(3, "order_days", pa.array(np.full(t.num_rows, 500, np.int64))),
            "more distinct order days than days",
        ),
        (lambda t: t.set_column(0, "customer_id", pa.array(["same"] * t.num_rows)), "repeat a customer_id"),
        (lambda t: t.set_column(4, "total_amount", pa.array([None] * t.num_rows, pa.float64())), "null total_amount"),
        (lambda t: t.set_column(5, "first_day_amount", pa.array(np.full(t.num_rows, 1e6))), "above total_amount"),
        (lambda t: t.set_column(1, "first_order_date", pa.array(["x"] * t.num_rows)), "wrong type"),
    ],
)
def test_impossible_aggregates_are_refused_with_a_line_that_says_what_to_fix(change, complaint: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ClvInputError, match=complaint) as error:
        customer_value(change(few_customers(25)), AS_OF)
    assert "\n" not in str(error.value)


def test_orders_after_as_of_are_refused() -> None:
    with pytest.raises(ClvInputError, match="order after as_of 2024-01-01"):
        customer_value(few_customers(25), date(2024, 1, 1))


@pytest.mark.parametrize(
    ("x", "t_x", "age", "complaint"),
    [
        ([1.0, 0.0], [5.0, 0.0], [4.0, 3.0], "recency beyond their age"),
        ([-1.0, 0.0], [0.0, 0.0], [4.0, 3.0], "not a whole number"),
        ([1.5, 0.0], [1.0, 0.0], [4.0, 3.0], "not a whole number"),
        ([0.0, 0.0], [2.0, 0.0], [4.0, 3.0], "no repeat purchase but a non-zero recency"),
        ([2.0, 0.0], [0.0, 0.0], [4.0, 3.0], "repeat purchases but recency 0"),
        ([1.0, np.nan], [1.0, 0.0], [4.0, 3.0], "frequency has 1 missing or infinite"),
        ([1.0], [1.0, 0.0], [4.0, 3.0], "pass one of each per customer"),
        ([0.0, 0.0], [0.0, 0.0], [4.0, 3.0], "none of the 2 has one"),
    ],
)
def test_impossible_features_are_refused_by_the_fit(
    x: list[float], t_x: list[float], age: list[float], complaint: str
) -> None:
    with pytest.raises(ClvInputError, match=complaint):
        fit_bg_nbd(np.array(x), np.array(t_x), np.array(age))


def test_gamma_gamma_without_any_repeat_spend_is_refused() -> None:
    with pytest.raises(ClvInputError, match="wait for more history"):
        fit_gamma_gamma(np.array([0.0, 2.0]), np.array([0.0, 0.0]))


def test_spend_too_heavy_tailed_for_a_finite_mean_is_reported_not_written() -> None:
    # GIVEN spend drawn with q = 0.8: the population's mean spend p·γ/(q−1) does not exist
    rng = np.random.default_rng(3)
    age = rng.uniform(20.0, 52.0, 3000)
    x, t_x, _, _, _ = simulate_bg_nbd(rng, 3000, *TRUE_BG.values(), age)
    one_per_day = x <= np.round(t_x * 7)
    x, t_x, age = x[one_per_day], t_x[one_per_day], age[one_per_day]
    mean_spend, _ = simulate_spend(rng, x, 2.0, 0.8, 15.0)
    # WHEN the table is built
    result = customer_value(aggregates_from_weeks(x, t_x, age, mean_spend), AS_OF)
    # THEN nothing is written and the spend fact says why
    assert result.status == "fit_failed" and result.table.num_rows == 0
    spend = {f.name: f.metrics for f in result.facts}["clv_gamma_gamma"]
    assert spend["status"] == "fit_failed" and spend["converged"] is True
    assert "infinite expected spend" in str(spend["message"])
    assert {f.name: f.metrics for f in result.facts}["clv_bg_nbd"]["status"] == "fitted"


def test_a_calibration_split_given_in_part_or_with_two_dates_is_refused() -> None:
    aggregates, as_of = aggregates_with_holdout(np.random.default_rng(3), 200, TRUE_MBG, modified=True)
    with pytest.raises(ClvInputError, match="pass the calibration split whole or not at all"):
        customer_value(aggregates.drop_columns("calibration_end"), as_of)
    ends = aggregates.column("calibration_end").to_pylist()
    ends[0] = ends[0] - timedelta(days=1)
    with pytest.raises(ClvInputError, match="2 distinct calibration_end dates"):
        customer_value(aggregates.set_column(7, "calibration_end", pa.array(ends, pa.date32())), as_of)


def test_too_few_repeat_customers_before_the_holdout_choose_on_the_whole_history() -> None:
    # GIVEN a split whose calibration period has fewer repeat customers than a fit needs
    aggregates, as_of = aggregates_with_holdout(np.random.default_rng(3), 3000, TRUE_MBG, modified=True)
    result = customer_value(aggregates, as_of, min_repeat_customers=2000)
    # THEN the models are compared on the whole history, and the facts say why
    assert result.status == "fitted"
    choice = {f.name: f.metrics for f in result.facts}["clv_purchase_model"]
    assert str(choice["chosen_by"]).startswith("log-likelihood of the whole history (no holdout comparison: ")
    assert "by the end of the calibration period, at least 2000 are needed" in str(choice["chosen_by"])
    assert "holdout_log_likelihood_bg_nbd" not in choice
