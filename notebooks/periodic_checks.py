# %% [markdown]
# # Periodic checks: how often does maintenance find the configuration kept?
#
# **Question.** A configuration agent checks a host every hour; the configuration drifts at
# random (rate 0.1 per hour) and a check repairs a drifted one with probability 0.9. What
# share of checks finds it kept, repaired, or not kept, and does the simulation reproduce the
# closed form? With d = 1 - exp(-lambda T), the probability of being broken after a check is
# d(1-s) / (d(1-s) + s).

# %%
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import promisesim as ps

scenario = ps.load_scenario(Path(ps.__file__).parent / "examples" / "periodic_checks.yaml")
result = ps.simulate(scenario.model, horizon=scenario.horizon, replications=scenario.replications,
                     seed=scenario.seed)
observed = result.observation_summary().set_index("metric")
observed

# %%
lam, interval, success = 0.1, 1.0, 0.9
d = 1 - math.exp(-lam * interval)
broken = d * (1 - success) / (d * (1 - success) + success)
closed = {"kept_share": (1 - broken) * (1 - d), "repaired_share": (broken + (1 - broken) * d) * success,
          "not_kept_share": broken}
for metric, value in closed.items():
    row = observed.loc[metric]
    print(f"{metric:15} simulated {row['mean']:.4f} ± {row['stderr']:.4f}   closed form {value:.4f}")
    assert abs(row["mean"] - value) <= 3 * row["stderr"]

# %% [markdown]
# **Answer.** About 89.5% of checks find the configuration kept, 9.4% repair it and 1% find it
# still broken, as the closed form says, within three standard errors.

# %%
from matplotlib.figure import Figure

ax = Figure(figsize=(6, 3.5), layout="constrained").add_subplot()
names = list(closed)
ax.bar(names, [observed.loc[n, "mean"] for n in names], yerr=[observed.loc[n, "stderr"] * 1.96
                                                             for n in names], capsize=4,
       label="simulated (95% CI)")
ax.scatter(names, [closed[n] for n in names], color="tab:red", zorder=3, label="closed form")
ax.set_yscale("log")
ax.legend()
ax.figure
