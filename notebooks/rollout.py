# %% [markdown]
# # A rollout: what does moving from v1 to v2 cost the consumers?
#
# **Question.** A store offers two versions side by side (forks). v2 is released at 10 min,
# 90% of the traffic moves to it over the next ten minutes (20 to 30 min), v2 then changes its
# behaviour without telling anyone at 40 min (its consumers need 3 minutes to adapt), and v1 is
# retired at 50 min although a tenth of the consumers never moved. A web page promises its
# users an answer and needs the store's promise for it. Each request is bound to one version
# by the traffic split, with no fail-over. When do the page's promises break, how many, and
# what would a complete migration have changed?

# %%
import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd

import promisesim as ps

RELEASE, MIGRATE, OVER, CHANGE, ADAPT, RETIRE = 600.0, 1_200.0, 600.0, 2_400.0, 180.0, 3_000.0
HORIZON, REPLICATIONS = 4_800.0, 4


def rollout(share):
    m = ps.Model(f"rollout, {share:.0%} migrated")
    store = m.versions("store", {
        "v1": ps.AgentTemplate(service_time=ps.Exponential(mean=0.02), servers=4),
        "v2": ps.AgentTemplate(service_time=ps.Exponential(mean=0.01), servers=4),
    }, traffic={"v1": 1.0})
    app = m.agent("app")
    get = m.promise(store, to=app, body=ps.Latency(deadline=0.5), name="get")
    page = m.promise(app, to=m.agent("users"), body=ps.Latency(deadline=1.0), conditions=get,
                     name="page")
    m.workload(page, rate=2.0)
    m.inject(ps.Release(store, "v2", at=RELEASE))
    m.inject(ps.Migrate(store, "v2", at=MIGRATE, share=share, over=OVER))
    m.inject(ps.UndocumentedChange(store, "v2", at=CHANGE, adapt=ADAPT))
    m.inject(ps.Retire(store, "v1", at=RETIRE))
    return m


# the same seed for both: the same arrivals and the same draws binding them to versions
results = {share: ps.simulate(rollout(share), horizon=HORIZON, replications=REPLICATIONS,
                              seed=3)
           for share in (0.9, 1.0)}
results[0.9].causes.query("promise == 'page' and replication == 0")

# %% [markdown]
# The causes table already tells the story: the page broke twice, for the 3 minutes of the
# undocumented change (root cause `store.v2`) and from v1's retirement to the end (root cause
# `store.v1`, still bound to the consumers that did not move).
#
# **Closed forms.** A request arriving at time `t` is bound to v2 with the planned share
# `s(t)`: 0 until the migration, rising linearly to `S` (here 0.9) over ten minutes, then `S`.
# It breaks if it is bound to v2 during the undocumented change, or to v1 after the
# retirement. So the page keeps `1 - S` of the requests during the change, `S` after the
# retirement, all of them otherwise, and over the whole run (arrivals are uniform in time)
# `1 - (S * adapt + (1 - S) * (horizon - retire)) / horizon`. Requests are bound
# independently, so a share over `N` requests has the binomial standard error
# `sqrt(p (1 - p) / N)`.

# %%
def planned_share(t, share):
    return share * np.clip((np.asarray(t) - MIGRATE) / OVER, 0.0, 1.0)


def per_request(result, share):
    """The page's requests with the version each was bound to and its expected kept chance."""
    rq = result.requests
    key = ["replication", "workload", "index"]
    page = rq[rq["promise"] == "page"].set_index(key)
    to_v2 = rq[rq["promise"] == "get@store.v2"].set_index(key).index
    page = page.assign(v2=page.index.isin(to_v2)).reset_index()
    s = planned_share(page["arrival"], share)
    in_change = (page["arrival"] >= CHANGE) & (page["arrival"] < CHANGE + ADAPT)
    retired = page["arrival"] >= RETIRE
    page["expected"] = np.where(in_change, 1 - s, np.where(retired, s, 1.0))
    return page


def check(flags, expected, label):
    """The share of True in flags against its closed form, within 4 binomial standard errors."""
    n, share = len(flags), flags.mean()
    se = np.sqrt(expected * (1 - expected) / n)
    print(f"{label}: {share:.4f}, closed form {expected:.4f} +/- {4 * se:.4f} ({n} requests)")
    assert n > 0 and abs(share - expected) <= 4 * se


S = 0.9
partial = per_request(results[S], S)
at, kept, v2 = partial["arrival"], partial["kept"], partial["v2"]
in_change = (at >= CHANGE) & (at < CHANGE + ADAPT)
assert kept[at < CHANGE].all()                    # release and migration break nothing
check(kept[in_change], 1 - S, "kept during the change")
check(kept[at >= RETIRE], S, "kept after the retirement")
check(kept, 1 - (S * ADAPT + (1 - S) * (HORIZON - RETIRE)) / HORIZON, "kept in the whole run")
# the binding follows the planned split: on average half of 90% during the ramp, then 90%
check(v2[(at >= MIGRATE) & (at < MIGRATE + OVER)], S / 2, "bound to v2 during the ramp")
check(v2[at >= MIGRATE + OVER], S, "bound to v2 after the ramp")
# and per request: exactly those bound to v2 during the change, or to v1 after, broke
assert (kept == ~((in_change & v2) | ((at >= RETIRE) & ~v2))).all()

# %% [markdown]
# **A complete migration.** Moving every consumer (`share=1.0`) before retiring v1 makes the
# retirement free; the undocumented change now breaks every request for its 3 minutes, since
# nobody is left on v1.

# %%
full = per_request(results[1.0], 1.0)
at_full = full["arrival"]
assert full["kept"][at_full >= RETIRE].all()                 # retiring breaks nothing
assert not full["kept"][(at_full >= CHANGE) & (at_full < CHANGE + ADAPT)].any()
check(full["kept"], 1 - ADAPT / HORIZON, "kept in the whole run, complete migration")
kept_shares = pd.Series({f"{share:.0%} migrated": per_request(r, share)["kept"].mean()
                         for share, r in results.items()}, name="page kept share")
assert kept_shares["100% migrated"] > kept_shares["90% migrated"]
kept_shares

# %% [markdown]
# **Answer.** The release and the gradual migration broke nothing; the undocumented change
# broke the requests bound to v2 (90% of them) until the consumers adapted, and retiring v1
# broke the 10% never migrated for the rest of the run, so that after the retirement the page
# keeps only the migrated share, and over the run about 7% of its requests break. Migrating
# everyone before retiring would have left only the change's three minutes.

# %%
from matplotlib.figure import Figure

fig = Figure(figsize=(10, 6), layout="constrained")
top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
for share, rows, colour in ((0.9, partial, "tab:blue"), (1.0, full, "tab:orange")):
    minute = (rows["arrival"] // 60).astype(int)
    per_minute = rows.groupby(minute)[["kept", "expected", "v2"]].mean()
    top.step(per_minute.index, per_minute["kept"], where="post", color=colour,
             label=f"{share:.0%} migrated: simulated")
    top.step(per_minute.index, per_minute["expected"], where="post", color=colour, ls="--",
             alpha=0.6, label=f"{share:.0%} migrated: closed form")
    bottom.step(per_minute.index, per_minute["v2"], where="post", color=colour,
                label=f"{share:.0%} migrated")
    t = np.linspace(0.0, HORIZON, 481)
    bottom.plot(t / 60, planned_share(t, share), color=colour, ls="--", alpha=0.6)
marks = ((RELEASE, "release v2"), (MIGRATE, "migrate"), (CHANGE, "undocumented change"),
         (RETIRE, "retire v1"))
for ax in (top, bottom):
    ax.axvspan(CHANGE / 60, (CHANGE + ADAPT) / 60, color="tab:red", alpha=0.15)
    for when, _ in marks:
        ax.axvline(when / 60, color="grey", lw=0.8)
for when, what in marks:
    top.text(when / 60, 0.35, f" {what}", fontsize="small", rotation=90)
top.set_ylabel("page requests kept")
top.legend(fontsize="small", loc="lower left")
bottom.set_ylabel("bound to v2")
bottom.set_xlabel("minute")
bottom.legend(fontsize="small", loc="upper left")
fig

# %% [markdown]
# ## A canary that rolls itself back
#
# **Question.** Progressive-delivery controllers (Argo Rollouts, Flagger) move traffic to a
# new version step by step and *analyse* it at every step: if its requests break too often,
# they give the traffic back to the stable version. Here v2 answers 20% of requests with an
# error, and a canary gives it 5% of the traffic for ten minutes, then 50%, then all. The
# analysis runs every minute over the last five minutes of v2's requests and allows 5%
# broken. How soon does it roll back, and how many requests does the bad version break
# first, against the same canary without an analysis?

# %%
CANARY = 600.0


def bad_canary(analysis):
    m = ps.Model("bad canary" + (" with rollback" if analysis else ""))
    store = m.versions("store", {
        "v1": ps.AgentTemplate(service_time=ps.Exponential(mean=0.02), servers=4),
        "v2": ps.AgentTemplate(service_time=ps.Exponential(mean=0.02), servers=4, errors=0.2),
    }, traffic={"v1": 1.0})
    app = m.agent("app")
    get = m.promise(store, to=app, body=ps.Latency(deadline=0.5), name="get")
    page = m.promise(app, to=m.agent("users"), body=ps.Latency(deadline=1.0), conditions=get,
                     name="page")
    m.workload(page, rate=10.0)
    m.inject(ps.Canary(store, "v2", at=CANARY, steps=[(0.05, 600), (0.5, 600), (1.0, 0)],
                       rollback=ps.Rollback(max_broken=0.05, window=300.0, interval=60.0)
                       if analysis else None))
    return m


canaries = {analysis: ps.simulate(bad_canary(analysis), horizon=2_400.0, replications=8, seed=5)
            for analysis in (True, False)}
rollbacks = canaries[True].rollbacks
assert rollbacks["rolled_back"].all() and (rollbacks["time"] <= CANARY + 300.0).all()
rollbacks

# %%
broken = pd.DataFrame({
    ("with rollback" if analysis else "without"): result.requests.query("promise == 'page'")
    .assign(broken=lambda q: ~q["kept"]).groupby("replication")["broken"].sum()
    for analysis, result in canaries.items()})
assert (broken["with rollback"] * 20 < broken["without"]).all()
# without: 20% of the requests bound to v2 break, 10 a second at 5%, 50%, then 100%
expected = 0.2 * 10.0 * (0.05 * 600 + 0.5 * 600 + 1.0 * 600)
se = broken["without"].std(ddof=1) / np.sqrt(len(broken))
assert abs(broken["without"].mean() - expected) <= 4 * se, (broken["without"].mean(), expected)
broken.describe().loc[["mean", "min", "max"]]

# %% [markdown]
# **Answer.** The first analysis, a minute into the canary, already sees about 30 of v2's
# requests with 20% of them broken, and rolls back in every replication: the bad version
# breaks a handful of page requests (those bound to it in that minute), where the same
# canary without an analysis breaks about 1,860 (20% of the 9,300 requests bound to v2: 5%
# of ten minutes' traffic, then 50%, then all), 8% of all the page's requests.
