"""Closed forms used to validate simulations (and handy for back-of-envelope checks).

Each function states the model it describes; tests compare simulation
estimates with them within confidence intervals from the replications.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = [
    "availability",
    "series",
    "parallel",
    "k_of_n",
    "mm1_response_within",
    "tandem_mm1_response_within",
    "erlang_c",
    "mmc_response_within",
    "mmck_blocking",
    "outage_share",
    "t_quantile",
]


def availability(mttf: float, mttr: float) -> float:
    """Long-run availability of an alternating renewal process: ``MTTF / (MTTF + MTTR)``.

    >>> round(availability(1000.0, 2.0), 6)
    0.998004
    """
    return mttf / (mttf + mttr)


def series(*availabilities: float) -> float:
    """Independent components all needed (a chain of conditional promises): the product."""
    return math.prod(availabilities)


def parallel(*availabilities: float) -> float:
    """Independent components, any one enough (a choice): ``1 - prod(1 - A_i)``."""
    return 1.0 - math.prod(1.0 - a for a in availabilities)


def k_of_n(k: int, availabilities: Sequence[float] | float, n: int | None = None) -> float:
    """Probability that at least ``k`` of ``n`` independent components are up.

    ``availabilities`` is one value shared by ``n`` components, or one per component.

    >>> round(k_of_n(2, 0.9, n=3), 6)   # 3A^2 - 2A^3
    0.972
    """
    if isinstance(availabilities, (int, float)):
        if n is None:
            raise ValueError("n is needed when one availability is shared")
        probs = [float(availabilities)] * n
    else:
        probs = list(availabilities)
    # Distribution of the number up, by dynamic programming (Poisson binomial).
    dist = [1.0]
    for p in probs:
        nxt = [0.0] * (len(dist) + 1)
        for i, q in enumerate(dist):
            nxt[i] += q * (1.0 - p)
            nxt[i + 1] += q * p
        dist = nxt
    return sum(dist[k:])


def mm1_response_within(arrival_rate: float, service_rate: float, deadline: float) -> float:
    """M/M/1 FIFO in steady state: ``P(response time <= d) = 1 - exp(-(mu - lambda) d)``."""
    if arrival_rate >= service_rate:
        raise ValueError("the queue is unstable: arrival_rate must be below service_rate")
    return 1.0 - math.exp(-(service_rate - arrival_rate) * deadline)


def tandem_mm1_response_within(arrival_rate: float, service_rates: Sequence[float],
                               deadline: float) -> float:
    """Tandem of M/M/1 FIFO queues in steady state: ``P(total response time <= d)``.

    A customer's sojourn times in the stations are independent (Reich 1957),
    each exponential with rate ``mu_i - lambda``, so the total is
    hypoexponential. The rates ``mu_i - lambda`` must be distinct.
    """
    rates = [mu - arrival_rate for mu in service_rates]
    if min(rates) <= 0:
        raise ValueError("every queue must be stable: arrival_rate below each service rate")
    if len(set(rates)) != len(rates):
        raise ValueError("the rates mu_i - lambda must be distinct")
    # Hypoexponential survival: sum_i prod_{j != i} r_j / (r_j - r_i) * exp(-r_i d).
    survival = 0.0
    for i, ri in enumerate(rates):
        weight = math.prod(rj / (rj - ri) for j, rj in enumerate(rates) if j != i)
        survival += weight * math.exp(-ri * deadline)
    return 1.0 - survival


def erlang_c(arrival_rate: float, service_rate: float, servers: int) -> float:
    """M/M/c: the probability that an arriving customer waits (Erlang's C formula).

    >>> round(erlang_c(0.5, 1.0, 1), 6)      # M/M/1: the utilisation
    0.5
    """
    a = arrival_rate / service_rate
    if a >= servers:
        raise ValueError("the queue is unstable: arrival_rate must be below servers * service_rate")
    term, total = 1.0, 1.0          # a^n / n!, summed over n < c
    for n in range(1, servers):
        term *= a / n
        total += term
    last = term * a / servers * servers / (servers - a)   # a^c / c! * c / (c - a)
    return last / (total + last)


def mmc_response_within(arrival_rate: float, service_rate: float, servers: int,
                        deadline: float) -> float:
    """M/M/c FIFO in steady state: ``P(wait + service <= d)``.

    A customer waits with probability ``C`` (:func:`erlang_c`), and then for an
    ``Exp(c mu - lambda)`` time; its service is ``Exp(mu)``, independent of the wait.
    """
    c_wait = erlang_c(arrival_rate, service_rate, servers)
    r, mu, d = servers * service_rate - arrival_rate, service_rate, deadline
    if math.isclose(r, mu):
        tail_waiting = math.exp(-mu * d) * (1.0 + mu * d)        # Erlang(2, mu)
    else:
        tail_waiting = (mu * math.exp(-r * d) - r * math.exp(-mu * d)) / (mu - r)
    return 1.0 - (c_wait * tail_waiting + (1.0 - c_wait) * math.exp(-mu * d))


def mmck_blocking(arrival_rate: float, service_rate: float, servers: int, capacity: int) -> float:
    """M/M/c/K: the share of arrivals that find ``capacity`` customers in the system and are
    turned away (by PASTA, the stationary probability of a full system).

    >>> round(mmck_blocking(0.8, 1.0, 1, 3), 6)   # (1 - rho) rho^K / (1 - rho^(K+1))
    0.173442
    """
    if capacity < servers:
        raise ValueError("capacity must be at least the number of servers")
    a = arrival_rate / service_rate
    weights = []
    w = 1.0
    for n in range(capacity + 1):
        if n > 0:
            w *= a / min(n, servers)
        weights.append(w)
    return weights[-1] / sum(weights)


def outage_share(horizon: float, at: float, duration: float) -> float:
    """Share of ``[0, horizon)`` covered by an outage on ``[at, at + duration)``."""
    return max(0.0, min(horizon, at + duration) - max(0.0, at)) / horizon


def _normal_quantile(p: float) -> float:
    # Acklam's rational approximation (relative error 1.15e-9), refined by one Halley step.
    a = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
         1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
    b = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
         6.680131188771972e01, -1.328068155288572e01)
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
         -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
    if not 0.0 < p < 1.0:
        raise ValueError("p must be in (0, 1)")
    if p < 0.02425:
        q = math.sqrt(-2 * math.log(p))
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    elif p > 1 - 0.02425:
        q = math.sqrt(-2 * math.log(1 - p))
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    else:
        q = p - 0.5
        r = q * q
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / \
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    e = 0.5 * math.erfc(-x / math.sqrt(2)) - p
    u = e * math.sqrt(2 * math.pi) * math.exp(x * x / 2)
    return x - u / (1 + x * u / 2)


def _t_cdf(x: float, df: int) -> float:
    # Student t CDF through the regularised incomplete beta function (continued fraction).
    t = df / (df + x * x)
    a, b = df / 2.0, 0.5
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(t) + b * math.log1p(-t))
    # Lentz's algorithm for the continued fraction of I_t(a, b).
    tiny = 1e-300
    f = c = 1.0
    dd = 1.0 - (a + b) * t / (a + 1.0)
    dd = 1.0 / (dd if abs(dd) > tiny else tiny)
    f = dd
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * t / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * t / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            dd = 1.0 + numerator * dd
            dd = 1.0 / (dd if abs(dd) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            f *= dd * c
        if abs(dd * c - 1.0) < 1e-15:
            break
    tail = 0.5 * front * f / a  # P(T > |x|)
    return 1.0 - tail if x >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """Quantile of Student's t distribution with ``df`` degrees of freedom.

    >>> round(t_quantile(0.975, 10), 4)
    2.2281
    """
    if df <= 0:
        raise ValueError("df must be positive")
    if not 0.0 < p < 1.0:
        raise ValueError("p must be in (0, 1)")
    if math.isinf(df) or df > 1e7:
        return _normal_quantile(p)
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    if p == 0.5:
        return 0.0
    # Newton's method from the normal quantile, on the exact CDF.
    x = _normal_quantile(p)
    for _ in range(100):
        pdf = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)
                       - 0.5 * math.log(df * math.pi) - (df + 1) / 2 * math.log1p(x * x / df))
        step = (_t_cdf(x, int(df) if float(df).is_integer() else df) - p) / pdf
        x -= step
        if abs(step) < 1e-12 * max(1.0, abs(x)):
            break
    return x
