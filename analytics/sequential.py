"""Always-valid inference for the difference of two conversion rates: the normal-mixture mSPRT.

Method: the mixture sequential probability ratio test of Johari, Pekelis & Walsh, "Always Valid
Inference: Continuous Monitoring of A/B Tests", Operations Research 70(3), 2022 (arXiv:1512.04922),
two-stream form with a normal mixing distribution N(θ₀, τ²) over the true difference θ = p_t − p_c.
With θ̂ the observed difference and V its (unpooled) variance p̂_t(1−p̂_t)/n_t + p̂_c(1−p̂_c)/n_c,
the mixture likelihood ratio against H₀: θ = θ₀ has the closed form

    Λ = sqrt(V / (V + τ²)) · exp(τ² (θ̂ − θ₀)² / (2 V (V + τ²)))

and by Ville's inequality P(Λ ever reaches 1/α under H₀) ≤ α, however often one looks. Hence

* the always-valid p-value is min(1, 1/Λ) (and its running minimum over looks is still valid);
* the always-valid (1 − α) confidence sequence is every θ₀ with Λ(θ₀) < 1/α:
  θ̂ ± sqrt(V (V + τ²) / τ² · (2 log(1/α) + log((V + τ²) / V))).

The Bernoulli streams enter through the normal approximation of θ̂ (the paper's Section 4 treatment
of binary data); the same boundary is the Gaussian-mixture asymptotic confidence sequence of
Waudby-Smith, Arnold, Wu, Ramdas & Howard, "Time-uniform central limit theory and asymptotic
confidence sequences" (Annals of Statistics, 2024), so validity is asymptotic in the users per arm.

τ is the tuning parameter: the spread of effect sizes the test is tuned to find. The boundary is
tightest where V ≈ τ² / (2 log(1/α)), so a τ near the effects an experiment is run to detect gives
the shortest intervals at the sample sizes that matter. It must stay fixed for an experiment's life:
changing it between looks restarts the guarantee.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from scipy.stats import norm

#: Default mixture standard deviation: 2 percentage points of conversion, the size of effect
#: marketing experiments are typically run to detect (settings ``sequential_tau`` overrides it).
DEFAULT_TAU = 0.02
DEFAULT_ALPHA = 0.05
METHOD = "mSPRT normal mixture (Johari, Pekelis & Walsh 2022)"


@dataclass(frozen=True)
class SequentialComparison:
    """One treatment against its control at one look: the estimate and always-valid inference."""

    #: Observed difference in conversion rate, treatment − control.
    estimate: float
    #: Unpooled variance of ``estimate``.
    variance: float
    #: Always-valid (1 − alpha) confidence sequence for the difference at this look.
    ci_low: float
    ci_high: float
    #: Always-valid p-value of "no difference" (θ₀ = 0).
    p_value: float
    #: The fixed-n Wald interval at this n, valid only for a single pre-planned look.
    fixed_ci_low: float
    fixed_ci_high: float
    #: log Λ of the mixture likelihood ratio against θ₀ = 0.
    log_likelihood_ratio: float
    n_treatment: int
    n_control: int
    tau: float
    alpha: float
    method: str = METHOD

    @property
    def significant(self) -> bool:
        """True when the always-valid p-value is below alpha (the interval then excludes 0)."""
        return self.p_value < self.alpha

    def carried_over(self, p_value: float | None, ci_low: float | None, ci_high: float | None) -> SequentialComparison:
        """This look combined with the previous one: running minimum p, intersected interval.

        Both stay valid (the guarantee holds for every look at once). The intersection is skipped
        when it would be empty, which only the normal approximation at small n can cause.
        """
        p = min(self.p_value, p_value) if p_value is not None else self.p_value
        low, high = self.ci_low, self.ci_high
        if ci_low is not None and ci_high is not None and max(low, ci_low) <= min(high, ci_high):
            low, high = max(low, ci_low), min(high, ci_high)
        return dataclasses.replace(self, p_value=p, ci_low=low, ci_high=high)


def log_mixture_likelihood_ratio(estimate: float, variance: float, tau: float, theta0: float = 0.0) -> float:
    """log Λ of the normal-mixture SPRT for a normal estimate with known variance (closed form)."""
    total = variance + tau * tau
    return 0.5 * math.log(variance / total) + tau * tau * (estimate - theta0) ** 2 / (2 * variance * total)


def confidence_radius(variance: float, tau: float, alpha: float) -> float:
    """Half width of the always-valid (1 − alpha) interval: where log Λ(θ₀) reaches log(1/alpha)."""
    total = variance + tau * tau
    return math.sqrt(variance * total / (tau * tau) * (2 * math.log(1 / alpha) + math.log(total / variance)))


def compare_conversions(
    conversions_treatment: int,
    users_treatment: int,
    conversions_control: int,
    users_control: int,
    *,
    tau: float = DEFAULT_TAU,
    alpha: float = DEFAULT_ALPHA,
) -> SequentialComparison | None:
    """Always-valid comparison of two conversion rates; None when an arm has no users or V is 0.

    V is 0 when both arms have converted all or none of their users: there is no spread yet to
    scale the evidence by, so no interval is drawn (rather than a zero-width one).
    """
    if tau <= 0 or not 0 < alpha < 1:
        raise ValueError(f"tau must be > 0 and alpha in (0, 1); got tau={tau}, alpha={alpha}")
    if users_treatment <= 0 or users_control <= 0:
        return None
    rate_t = conversions_treatment / users_treatment
    rate_c = conversions_control / users_control
    variance = rate_t * (1 - rate_t) / users_treatment + rate_c * (1 - rate_c) / users_control
    if variance <= 0:
        return None
    estimate = rate_t - rate_c
    log_lr = log_mixture_likelihood_ratio(estimate, variance, tau)
    radius = confidence_radius(variance, tau, alpha)
    fixed = float(norm.ppf(1 - alpha / 2)) * math.sqrt(variance)
    return SequentialComparison(
        estimate=estimate,
        variance=variance,
        ci_low=estimate - radius,
        ci_high=estimate + radius,
        # 1/Λ in log space: Λ overflows a float long before the evidence is unusual.
        p_value=math.exp(-max(log_lr, 0.0)),
        fixed_ci_low=estimate - fixed,
        fixed_ci_high=estimate + fixed,
        log_likelihood_ratio=log_lr,
        n_treatment=users_treatment,
        n_control=users_control,
        tau=tau,
        alpha=alpha,
    )
