"""promisesim: simulate agents that make promises to each other, and measure how often they are kept.

A model is a description (:class:`Model`); :func:`simulate` runs it on an
engine and returns tidy pandas results (:class:`Result`).
"""

from __future__ import annotations

from .dists import Deterministic, Distribution, Empirical, Exponential, LogNormal, Uniform
from .errors import EngineError, ScenarioError
from .experiment import simulate
from .model import (
    Agent, Alert, AgentTemplate, SuperAgent, Availability, Backoff, Breaker, Bursts, Degrade, Partition, Condition, Failures, Latency, Maintenance, Model, ModelSpec, Objective, Observer, Outage, ScaleTo, Autoscaler, Promise, RetryBudget, Workload,
    Versioned, Release, Retire, Migrate, Canary, Rollback, UndocumentedChange,
    all_of, any_of, fallback, k_of,
)
from .random import Streams
from .results import Result, load_result
from .scenario import dump_scenario, load_scenario
from .sweep import load_sweep, replicate, sweep

__version__ = "0.1.0"

__all__ = [
    "Agent", "Alert", "AgentTemplate", "SuperAgent", "Availability", "Backoff", "Breaker", "Bursts", "Condition", "Degrade", "Deterministic", "Distribution", "Empirical",
    "EngineError", "Exponential", "Failures", "Latency", "Maintenance", "LogNormal", "Model", "ModelSpec",
    "Objective", "Observer", "Outage", "Partition", "ScaleTo", "Autoscaler", "Versioned", "Release", "Retire", "Migrate", "Canary", "Rollback",
    "UndocumentedChange", "Promise", "Result", "RetryBudget", "ScenarioError", "Streams", "Uniform", "Workload",
    "all_of", "any_of", "dump_scenario", "fallback", "k_of", "load_result", "load_scenario", "load_sweep", "replicate",
    "simulate", "sweep", "__version__",
]
