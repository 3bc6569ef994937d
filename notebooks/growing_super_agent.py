# %% [markdown]
# # A growing super-agent: when does a quorum get too slow to keep its promise?
#
# **Question.** A replicated store is a super-agent: it promises reads within 50 ms, and keeps
# that promise when a majority of its members answer (a quorum). Its members talk over a
# network: each internal message takes a 4 ms hop, and the front sends its requests to the
# members one after another. Adding members adds fault tolerance, but how fast does the read
# promise fail as the store grows from 3 to 21 members, what does it cost in internal
# messages, and how much worse is a consensus round in which every member messages every
# other (`rule="all_to_all"`)?

# %%
import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd

import promisesim as ps

HOP, DEADLINE, SERVICE, RATE = 0.004, 0.05, 0.008, 5.0
HORIZON, REPLICATIONS = 600.0, 4


def store(n, rule):
    m = ps.Model(f"store of {n}, {rule}")
    quorum = {"k": n // 2 + 1} if rule == "k" else {}
    group = m.super_agent("store", size=n, rule=rule, hop=HOP, **quorum,
                          member=ps.AgentTemplate(service_time=ps.Exponential(mean=SERVICE),
                                                  servers=4))
    read = m.promise(group, to=m.agent("client"), body=ps.Latency(deadline=DEADLINE),
                     name="read")
    m.workload(read, rate=RATE)
    return m


rows = []
for rule in ("k", "all_to_all"):
    for n in range(3, 23, 2):
        r = ps.simulate(store(n, rule), horizon=HORIZON, replications=REPLICATIONS, seed=1)
        arrived = r.requests[r.requests["promise"] == "read"]
        reads = arrived[arrived["outcome"] != "unfinished"]       # answered by the horizon
        late = arrived["arrival"] > HORIZON - 2 * n * HOP         # may still be calling members
        rows.append({"rule": rule, "n": n, "engine": r.engine, "arrived": len(arrived),
                     "reads": len(reads), "kept": reads["kept"].mean(),
                     "late_reads": int(late.sum()),
                     "interior": int(r.messages["requests"].sum()),
                     "messages": int(r.messages["messages"].sum())})
table = pd.DataFrame(rows)
table

# %% [markdown]
# **A closed form.** Member `j` (from 0) gets the read `j + 1` hops after the front, serves it
# in an exponential time `S_j` (its four servers are almost never all busy, so there is no
# queue) and answers one hop later; with `all_to_all` it first sends `n - 1` messages to the
# others, `n - 1` more hops. So member `j` answers in time with probability
# `p_j = 1 - exp(-(d - t_j) / mean)`, with `t_j = (j + 2) h` for the quorum and
# `(n + j + 1) h` for `all_to_all`, and 0 when `t_j >= d`. The quorum keeps a read when at
# least `k` of these independent events happen (a Poisson-binomial tail); `all_to_all` only
# when all of them do. Reads are independent of each other, so the simulated share has the
# binomial standard error `sqrt(p (1 - p) / reads)`.

# %%
def closed_form(n, rule):
    offsets = np.arange(n) + (2 if rule == "k" else n + 1)
    slack = np.maximum(DEADLINE - offsets * HOP, 0.0)
    p = np.where(slack > 0, 1 - np.exp(-slack / SERVICE), 0.0)
    needed = n // 2 + 1 if rule == "k" else n
    count = np.array([1.0])                   # distribution of the number of members in time
    for pj in p:
        count = np.convolve(count, [1 - pj, pj])
    return count[needed:].sum()


table["closed_form"] = [closed_form(n, rule) for n, rule in zip(table["n"], table["rule"])]
p = table["closed_form"]
table["stderr"] = np.sqrt(np.maximum(p * (1 - p), 1 / table["reads"]) / table["reads"])
table["z"] = (table["kept"] - p) / table["stderr"]
table[["rule", "n", "kept", "closed_form", "stderr", "z"]].round(4)

# %%
assert (table["engine"] == "vector").all()
assert (table["z"].abs() <= 4).all()              # the simulation matches the closed form
for rule, curve in table.groupby("rule"):
    kept, se = curve["kept"].to_numpy(), curve["stderr"].to_numpy()
    # growing never helps, beyond noise; and from 3 to 21 members it costs most reads
    assert (np.diff(kept) <= 4 * np.hypot(se[1:], se[:-1])).all(), rule
    assert kept[0] - kept[-1] > 0.5, rule
quorum = table[table["rule"] == "k"].set_index("n")
consensus = table[table["rule"] == "all_to_all"].set_index("n")
assert (consensus["kept"] <= quorum["kept"] + 4 * quorum["stderr"]).all()
# all_to_all's slowest member answers after 2 n hops at least: past the deadline, nothing kept
hopeless = consensus.index[2 * consensus.index * HOP >= DEADLINE]
assert len(hopeless) > 0 and (consensus.loc[hopeless, "kept"] == 0).all()
print("quorum below 50% from", quorum.index[quorum["kept"] < 0.5].min(), "members;",
      "all_to_all from", consensus.index[consensus["kept"] < 0.5].min())

# %% [markdown]
# **Messages.** Every read calls each of the `n` members (a request and an answer: 2
# messages; with `all_to_all` also `n - 1` exchange messages: `n + 1`), except the calls
# still to be sent when the horizon ends, which only a read arriving in its last `2 n` hops
# can have left.

# %%
n = table["n"]
each = np.where(table["rule"] == "k", 2, n + 1)
assert (table["interior"] <= n * table["arrived"]).all()
assert (table["interior"] >= n * (table["arrived"] - table["late_reads"])).all()
table["messages_per_read"] = table["messages"] / table["arrived"]
assert np.allclose(table["messages_per_read"], each * n, rtol=1e-3)
for rule, curve in table.groupby("rule"):
    assert (np.diff(curve["messages_per_read"]) > 0).all()
table.pivot(index="n", columns="rule", values="messages_per_read").round(1)

# %% [markdown]
# **Answer.** Each member the quorum gains adds a hop before the last member even hears of the
# read, so the 50 ms promise, kept by 3 to 11 members, fails for more than a quarter of reads
# at 17 members and for almost all at 21, while each read costs 2 messages per member; a consensus
# round costs `n + 1` messages per member and is hopeless from 7 members on, where its
# slowest answer cannot arrive in time. The simulation matches the closed form at every size.

# %%
from matplotlib.figure import Figure

fig = Figure(figsize=(11, 4), layout="constrained")
left, right = fig.subplots(1, 2)
labels = {"k": "quorum (k = n // 2 + 1)", "all_to_all": "all_to_all"}
for rule, curve in table.groupby("rule"):
    line = left.errorbar(curve["n"], curve["kept"], yerr=1.96 * curve["stderr"], fmt="o",
                         capsize=3, label=f"{labels[rule]}: simulated")
    left.plot(curve["n"], curve["closed_form"], color=line[0].get_color(), alpha=0.5,
              label=f"{labels[rule]}: closed form")
    right.plot(curve["n"], curve["messages_per_read"], "o-", label=labels[rule])
left.axhline(0.5, color="grey", lw=0.5)
left.set_ylabel("reads kept within 50 ms")
left.legend(fontsize="small", loc="lower left")
right.set_yscale("log")
right.set_ylabel("internal messages per read")
for ax in (left, right):
    ax.set_xticks(range(3, 23, 2))
    ax.set_xlabel("members")
right.legend(fontsize="small")
fig
