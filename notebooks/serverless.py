# %% [markdown]
# # Serverless under a spike: where do the promises break?
#
# **Question.** When a load spike hits a serverless function, where do its promises break: in
# the cold starts while new instances come up, at a limit nobody documented, or at a third
# party the function depends on? The two serverless cases of the examples answer it minute by
# minute: a personalised image (an autoscaled function, a hidden limit of 4 requests per
# instance, a six-fold campaign and a five-minute object-store outage) and a meme editor (a
# function scaled by hand for a known event, a limit of 2 per instance, an image API that
# slows under load and goes down for five minutes).

# %%
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd

import promisesim as ps
from promisesim.sizes import mean_size

examples = Path(ps.__file__).parent / "examples"
image = ps.load_scenario(examples / "serverless_image.yaml")
meme = ps.load_scenario(examples / "serverless_meme.yaml")
# two replications each: the reference engine runs these features (a few seconds each)
results = {name: ps.simulate(s.model, horizon=s.horizon, replications=2, seed=s.seed)
           for name, s in (("image", image), ("meme", meme))}
{name: r.engine for name, r in results.items()}

# %% [markdown]
# Every request of the top promise has one row in `result.requests`, and so has each call it
# made on the way down (same replication, workload and index). A broken request is counted as
# a **rejection** when any of its calls was refused at a hidden limit, else as the **third
# party's** when the third party's promise was not kept for it, else as late or other.

# %%
KEY = ["replication", "workload", "index"]


def causes(result, top, third_party):
    """One row per request of the top promise, with its minute and the cause of its break."""
    rq = result.requests.assign(promise=result.requests["promise"].astype(str))
    head = rq[rq["promise"] == top]
    ids = pd.MultiIndex.from_frame(head[KEY])
    rejected = pd.MultiIndex.from_frame(rq.loc[rq["outcome"] == "rejected", KEY])
    third = pd.MultiIndex.from_frame(rq.loc[(rq["promise"] == third_party) & ~rq["kept"], KEY])
    cause = np.select([head["kept"].to_numpy(), ids.isin(rejected), ids.isin(third)],
                      ["kept", "rejected", "third party"], "late or other")
    return head.assign(cause=cause, minute=(head["arrival"] // 60).astype(int))


def window(rows, start, end):
    """Kept share per replication of the requests arriving in [start, end), with the
    half-width of its 95% binomial interval."""
    inside = rows[(rows["arrival"] >= start) & (rows["arrival"] < end)]
    per = inside.groupby("replication")["kept"].agg(["mean", "size"])
    per["half"] = 1.96 * np.sqrt(per["mean"] * (1 - per["mean"]) / per["size"])
    return per


def serving(result, group, times):
    """Mean number of the group's instances serving (up) at each time, over replications:
    from ``result.sizes``, one row per replication and change of size."""
    return mean_size(result.sizes, group, times, result.replications)


img = causes(results["image"], "personalised", "read-original")
pd.crosstab(img["minute"], img["cause"]).loc[17:37]

# %% [markdown]
# **The personalised image.** The campaign starts at 20:00 (1,200 s). The function still has
# its two instances, each refusing a fifth request; the autoscaler looks every 30 s, acts 5 s
# later, and a new instance serves only after its start-up (0.2 s warm, about 2.5 s cold). In
# that first minute about half the requests are rejected. Once scaled, a few rejections remain
# (requests are spread at random, so one instance can fill while another idles). From 30:00 to
# 35:00 the object store is down and nothing is kept, whatever the function does.

# %%
first = window(img, 1_200, 1_260)
rest = pd.concat([img[(img["arrival"] >= 1_260) & (img["arrival"] < 1_800)],
                  img[(img["arrival"] >= 2_100) & (img["arrival"] < 2_400)]])
later = window(rest, 0, np.inf)
print(pd.concat({"first minute": first, "rest of the spike": later}, axis=1).round(3).to_string())
# in every replication the first minute keeps less, beyond both 95% intervals
assert ((first["mean"] + first["half"]) < (later["mean"] - later["half"])).all()

outage = img[(img["arrival"] >= 1_800) & (img["arrival"] < 2_100)]
assert len(outage) > 0 and not outage["kept"].any()          # the outage keeps nothing
assert (outage["cause"] == "third party").mean() > 0.9

spike = pd.concat([img[(img["arrival"] >= 1_200) & (img["arrival"] < 1_800)],
                   img[(img["arrival"] >= 2_100) & (img["arrival"] < 2_400)]])
broken = spike[~spike["kept"]]
share = (broken["cause"] == "rejected").mean()
half = 1.96 * np.sqrt(share * (1 - share) / len(broken))
print(f"{len(broken)} breaks in the spike outside the outage, {share:.1%} of them rejections")
assert share - half > 0.5                                   # most breaks are rejections

times = np.arange(0.0, image.horizon, 5.0)
image_serving = serving(results["image"], "personalise-fn", times)
assert (image_serving[times < 1_200] == 2).all()              # min_size before the campaign
assert image_serving[(times >= 1_260) & (times < 2_400)].min() > 2
ev = results["image"].events
ups = ev[(ev["event"] == "up") & ev["entity"].astype(str).str.fullmatch(r"personalise-fn\.\d+")
         & (ev["time"] >= 1_200)]
lag = ups.groupby("replication")["time"].min() - 1_200
print("first new instance serves after (s):", lag.round(1).tolist())
assert (lag > 5.0).all()          # never sooner than the autoscaler's delay plus a start-up

# %% [markdown]
# **The meme editor.** The event triples the traffic at 15:00 (900 s) and the function is
# scaled from 3 to 12 instances only a minute later (at 960 s, plus cold starts of about
# 1.5 s): that minute is the worst outside the outage. With a limit of 2 per instance, 3
# instances reject a few percent of requests even at the base load; 12 instances at the same
# base load (30:00 to 35:00, after the event and before scaling back) reject almost none.
# From 40:00 to 45:00 the image API is down and nothing is kept.

# %%
mm = causes(results["meme"], "meme", "render")
before = window(mm, 900, 960)
after = window(mm, 1_020, 1_800)
print(pd.concat({"event, 3 instances": before, "event, 12 instances": after},
                axis=1).round(3).to_string())
assert ((before["mean"] + before["half"]) < (after["mean"] - after["half"])).all()

three = window(mm, 0, 900)            # base load, 3 instances
twelve = window(mm, 1_800, 2_100)     # base load, 12 instances
print(pd.concat({"base load, 3 instances": three, "base load, 12 instances": twelve},
                axis=1).round(3).to_string())
assert ((three["mean"] + three["half"]) < (twelve["mean"] - twelve["half"])).all()
quiet = mm[(mm["arrival"] < 900) & ~mm["kept"]]
assert (quiet["cause"] == "rejected").mean() > 0.5         # the hidden limit, not the API

outage = mm[(mm["arrival"] >= 2_400) & (mm["arrival"] < 2_700)]
assert len(outage) > 0 and not outage["kept"].any()

meme_serving = serving(results["meme"], "meme-fn", times)
assert (meme_serving[times < 960] == 3).all() and (meme_serving[times >= 2_100] == 3).all()
assert (meme_serving[(times >= 970) & (times < 2_100)] == 12).all()

# %% [markdown]
# **Answer.** In both cases the spike breaks promises at the hidden per-instance limit, not in
# the cold starts as such: the start-ups (and the autoscaler's or the operators' delay) only
# decide how long the few instances already running must carry the load, and while they do,
# they reject it, which makes the spike's first minute the worst; the third party's outage,
# when it comes, breaks every request no matter how many instances serve.

# %%
from matplotlib.figure import Figure

colours = {"rejected": "tab:red", "third party": "tab:purple", "late or other": "tab:gray"}
fig = Figure(figsize=(12, 7), layout="constrained")
axes = fig.subplots(2, 2, sharex="col", height_ratios=[2, 1])
for col, (title, rows, group_serving) in enumerate([("personalised image", img, image_serving),
                                                    ("meme editor", mm, meme_serving)]):
    top, bottom = axes[0, col], axes[1, col]
    table = pd.crosstab(rows["minute"], rows["cause"], normalize="index")
    bottom_edge = np.zeros(len(table))
    for cause, colour in colours.items():
        if cause in table:
            top.bar(table.index + 0.5, table[cause], width=1.0, bottom=bottom_edge,
                    color=colour, label=cause)
            bottom_edge += table[cause].to_numpy()
    top.plot(table.index + 0.5, table["kept"], color="tab:blue", label="kept")
    top.set_ylim(0, 1)
    top.set_ylabel("share of requests")
    top.set_title(title)
    top.legend(loc="center left")
    bottom.step(times / 60, group_serving, where="post", color="tab:green")
    bottom.set_ylabel("instances serving")
    bottom.set_xlabel("minute")
fig

# %% [markdown]
# ## Scale from zero: how long to keep instances warm
#
# Platforms such as AWS Lambda scale a function per request: nothing runs at first, a
# request that finds no idle running instance waits for a cold start, and an idle instance
# is stopped after a while. In promisesim that is an agent with a `keep_alive`: its
# `servers` are instances started on demand. How often requests meet a cold start then
# follows from the traffic and the keep-alive. The example `function_from_zero.yaml` is
# such a function; here we ask how the keep-alive sets the share of cold starts for a
# function called once a second on average, and compare the simulation with the closed
# form for instant handlers (derived in `tests/test_instances.py`):
# `(1 + rc) / (2rc + exp(rk) - 1 + exp(-rc))` for rate `r`, keep-alive `k` and cold
# start `c`, which tends to `exp(-rk)` for short cold starts.

# %%
import math


def from_zero(keep_alive, rate=1.0, cold=0.5):
    m = ps.Model("from zero")
    fn = m.agent("fn", servers=200, keep_alive=keep_alive, cold_start=cold)
    p = m.promise(fn, to=m.agent("caller"), body=ps.Latency(deadline=cold / 2), name="answer")
    m.workload(p, rate=rate)
    return m


rows = []
for keep_alive in [0.5, 1.0, 2.0, 3.0, 5.0]:
    q = ps.simulate(from_zero(keep_alive), horizon=2_000.0, replications=10, seed=3).requests
    share = (q["latency"] > 0.25).groupby(q["replication"]).mean()   # warm: 0, cold: 0.5
    rc, rk = 0.5, keep_alive
    rows.append({"keep_alive": keep_alive, "cold share": share.mean(),
                 "standard error": share.std(ddof=1) / math.sqrt(share.size),
                 "closed form": (1 + rc) / (2 * rc + math.exp(rk) - 1 + math.exp(-rc)),
                 "exp(-r k)": math.exp(-rk)})
cold = pd.DataFrame(rows)
assert (abs(cold["cold share"] - cold["closed form"]) <= 4 * cold["standard error"]).all()
cold

# %% [markdown]
# **Answer.** Each second of keep-alive divides the share of cold starts by about `e` at one
# request per second: five seconds already make them rare. The closed form's `rc` terms
# matter when cold starts are long against the gaps between requests: requests that come
# while an instance starts start their own, so the share stays above `exp(-rk)`.

# %% [markdown]
# **Under a burst.** The example `function_from_zero.yaml` is a thumbnail function behind a
# gateway: 3 requests a second, then a newsletter's 60 a second for five minutes at half
# past. `result.instances` counts its instances running and the cold starts over time:
# at steady traffic about six stay warm. The burst keeps about twenty busy once it runs,
# but its first two seconds start about sixty: requests that come while instances start (1.2 s)
# start their own, each a cold start a request waits for. The extra instances then stay
# warm through the burst and stop five minutes after it.

# %%
zero = ps.load_scenario(examples / "function_from_zero.yaml")
burst = ps.simulate(zero.model, horizon=zero.horizon, replications=4, seed=zero.seed)
pools = burst.instances
starts = pools.assign(minute=(pools["time"] // 60).astype(int)).groupby("minute")["started"]
per_minute = starts.sum() / burst.replications
assert per_minute.loc[30] > 40 and per_minute.loc[10:29].sum() < 5
assert pools.groupby("replication")["running"].max().min() > 40
from promisesim.plotting import plot_sizes

ax = plot_sizes(burst)
ax.figure
