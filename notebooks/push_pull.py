# %% [markdown]
# # Choice, push or pull: what does a spare save, and what does detection cost?
#
# **Question.** An API needs a provider and has two: a primary that fails now and then (up for
# an exponential time of mean 100 s, repaired in 10 s) and a spare. It notices a change of
# state `d` seconds late. In pull mode (`ps.any_of(a, b, detect=d)`) each request goes to the
# first provider believed up, so the API fails back to the primary once it believes it
# repaired; in push mode (`mode="push"`) it stays with the provider it has until it believes
# that one down, then moves and stays. How many requests break in each mode as the detection
# delay grows, and what changes when the spare can fail too?

# %%
import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd

import promisesim as ps
from promisesim import diagnostics

MTTF, REPAIR, RATE = 100.0, 10.0, 0.5
HORIZON, REPLICATIONS, SEED = 10_000.0, 8, 31
DETECT = [0.0, 2.0, 5.0, 8.0]                # all shorter than a repair


def failover(mode="pull", detect=0.0, spare=True, spare_fails=False):
    m = ps.Model("failover")
    users, api = m.agent("users"), m.agent("api")

    def failing():
        return ps.Failures(time_to_failure=ps.Exponential(mean=MTTF),
                           time_to_repair=ps.Deterministic(REPAIR))

    a = m.promise(m.agent("primary", failures=failing()), to=api,
                  body=ps.Latency(deadline=1.0), name="a")
    needs = a
    if spare:
        b = m.promise(m.agent("spare", failures=failing() if spare_fails else None), to=api,
                      body=ps.Latency(deadline=1.0), name="b")
        needs = ps.any_of(a, b, mode=mode, detect=detect)
    p = m.promise(api, to=users, body=ps.Latency(deadline=1.0), conditions=needs, name="p")
    m.workload(p, rate=RATE)
    return m


# %% [markdown]
# **Single leaves.** Read from the promise graph alone, without simulating: with the primary
# only, the primary is a single point of failure of the API's promise; with the spare as a
# choice, no agent but the API itself can break it on its own.

# %%
alone = diagnostics.single_leaves(failover(spare=False))
with_spare = diagnostics.single_leaves(failover())
assert alone.query("promise == 'p'")["agent"].tolist() == ["primary"]
assert with_spare.empty
alone

# %% [markdown]
# The graph does not say what the choice costs at run time. Every run below uses the same seed,
# so the primary fails at the very same moments in both modes and at every detection delay
# (common random numbers): the differences are the modes', not noise.

# %%
rows, primary_down = [], []
for spare_fails in (False, True):
    for d in DETECT:
        for mode in ("pull", "push"):
            r = ps.simulate(failover(mode, d, spare_fails=spare_fails), horizon=HORIZON,
                            replications=REPLICATIONS, seed=SEED)
            p = r.promises.set_index(["promise", "replication"]).loc["p"]
            for replication, row in p.iterrows():
                rows.append({"spare fails": spare_fails, "detect": d, "mode": mode,
                             "replication": replication, "requests": row["requests"],
                             "broken": row["requests"] - row["requests_kept"]})
            iv = r.intervals
            primary_down.append(iv[(iv["entity"] == "primary") & (iv["state"] == "down")]
                                [["replication", "start", "end"]].reset_index(drop=True))
runs = pd.DataFrame(rows)
runs["share"] = runs["broken"] / runs["requests"]
for other in primary_down[1:]:
    pd.testing.assert_frame_equal(other, primary_down[0])      # the same failures everywhere
table = (runs.groupby(["spare fails", "detect", "mode"])
         .agg(broken_share=("share", "mean"), stderr=("share", "sem"), broken=("broken", "sum"),
              requests=("requests", "sum")))
table.round(5)

# %% [markdown]
# **Closed forms, a spare that never fails.** In pull mode each failure of the primary breaks
# the requests of its first `d` seconds (the API still believes it up), and the repair, longer
# than `d`, ends with a fail-back that breaks nothing. Failures come once per `MTTF + MTTR`,
# so the broken share is `d / (MTTF + MTTR)`: the failure rate times the detection delay. In
# push mode only the first failure costs `d`; the API then stays with the spare. Its broken
# requests are those arriving in one window of `d` seconds per replication: a Poisson count
# of mean `rate * d`.

# %%
never = table.loc[False]
pull, push = never.xs("pull", level="mode"), never.xs("push", level="mode")
expected_pull = pull.index / (MTTF + REPAIR)
print(pd.DataFrame({"pull": pull["broken_share"], "closed form": expected_pull,
                    "4 stderr": 4 * pull["stderr"]}).round(5))
assert (abs(pull["broken_share"] - expected_pull) <= 4 * pull["stderr"]).all()
assert pull.loc[0.0, "broken"] == 0                     # instant detection: nothing breaks
expected_push = REPLICATIONS * RATE * push.index        # broken requests, all replications
assert (abs(push["broken"] - expected_push) <= 4 * np.sqrt(expected_push)).all()
late = pull.index > 0
assert (push["broken_share"][late] < 0.1 * pull["broken_share"][late]).all()

# %% [markdown]
# **The spare fails too.** Give the spare the primary's failures. With instant detection both
# modes break exactly when both providers are down at once, a share `q^2` with
# `q = MTTR / (MTTF + MTTR)`. With a delay, push mode's advantage is gone: it stays with a
# provider as likely to fail as the primary, and each failure of the provider in use costs `d`
# in either mode: to first order both break `q^2 + d / (MTTF + MTTR)` (the dashed line of
# the plot below; pull a little more, as a spare failing while the primary is down costs `d`
# too). Paired replications (the same failures in both modes) show how much push still saves.

# %%
both = runs[runs["spare fails"]]
q = REPAIR / (MTTF + REPAIR)
instant = both[both["detect"] == 0.0]
for mode, shares in instant.groupby("mode")["share"]:
    assert abs(shares.mean() - q**2) <= 4 * shares.sem(), (mode, shares.mean(), q**2)
paired = both.pivot_table(index=["detect", "replication"], columns="mode", values="share")
saving = (paired["pull"] - paired["push"]).groupby("detect").agg(["mean", "sem"])
saving["pull"] = paired["pull"].groupby("detect").mean()
saving["share saved"] = saving["mean"] / saving["pull"]
print(saving.round(5))
# push saves less than a quarter of pull's breaks (it saved over 90% with a reliable spare)
assert ((saving["mean"] + 4 * saving["sem"]) < 0.25 * saving["pull"]).all()
# and both modes break more than with a spare that never fails
worse = table.loc[True, "broken_share"] - table.loc[False, "broken_share"]
assert (worse > 0).all()

# %% [markdown]
# **Answer.** With a spare that never fails, pull mode breaks `d / (MTTF + MTTR)` of the
# requests, the primary's failure rate times the detection delay, because it keeps going
# back to the primary, while push mode moves to the spare once and breaks almost nothing; when
# the spare fails as often as the primary, push saves little, and both modes pay about the
# failure rate times the delay, on top of the time both providers are down together. The
# graph's single-leaf check shows the spare removes the single point of failure, but only the
# simulation shows what the detection delay still costs.

# %%
from matplotlib.figure import Figure

fig = Figure(figsize=(11, 4), layout="constrained")
axes = fig.subplots(1, 2, sharey=True)
grid = np.linspace(0.0, max(DETECT), 50)
for ax, spare_fails in zip(axes, (False, True)):
    for mode, colour in (("pull", "tab:blue"), ("push", "tab:orange")):
        curve = table.loc[(spare_fails, slice(None), mode)]
        ax.errorbar(DETECT, curve["broken_share"], yerr=1.96 * curve["stderr"], fmt="o-",
                    color=colour, capsize=3, label=f"{mode}: simulated")
    floor = q**2 if spare_fails else 0.0
    ax.plot(grid, floor + grid / (MTTF + REPAIR), "k--", lw=0.8,
            label="q^2 + d / (MTTF + MTTR), to first order" if spare_fails
            else "d / (MTTF + MTTR)")
    ax.set_xlabel("detection delay d (s)")
    ax.set_title("the spare fails too" if spare_fails else "the spare never fails")
axes[1].axhline(q**2, color="grey", lw=0.8, label="both down at once, q^2")
axes[0].set_ylabel("share of requests broken")
for ax in axes:
    ax.legend(fontsize="small", loc="upper left")
fig
