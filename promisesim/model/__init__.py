"""The model: a description of agents and promises, with no engine imports."""

from .agents import Agent, Bursts, Failures, Maintenance
from .injections import Autoscaler, Degrade, Observer, Outage, Partition, ScaleTo, Workload
from .model import Model
from .objectives import Alert, Objective
from .promises import Availability, Backoff, Breaker, Condition, Latency, Promise, RetryBudget, all_of, any_of, fallback, k_of
from .spec import CallCondition, CallNode, ModelSpec
from .super_agents import AgentTemplate, SuperAgent
from .versions import Canary, Migrate, Release, Retire, Rollback, UndocumentedChange, Versioned

__all__ = [
    "Agent", "AgentTemplate", "SuperAgent", "Bursts", "Degrade", "Partition", "Failures", "Maintenance", "Observer", "Outage", "ScaleTo", "Autoscaler", "Workload", "Model", "Alert", "Objective", "Availability", "Backoff", "Breaker", "RetryBudget", "Condition", "Latency",
    "Promise", "Versioned", "Release", "Retire", "Migrate", "Canary", "Rollback", "UndocumentedChange", "all_of", "any_of", "fallback", "k_of", "CallCondition", "CallNode", "ModelSpec",
]
