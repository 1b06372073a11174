"""The monitor in the control loop: a policy wrapper and a Gymnasium env wrapper that act on alarms.

At every step the wrapper gives the monitor the signals its scores read for the current
observation (the observation itself, the policy's ``embed(obs)``, its ``sample_chunks(obs, B)``),
and once an alarm is raised acts as configured for the rest of the episode (the policy's calls run
torch on one thread, see :mod:`robogate._utils.threads`):

``"stop"``      end the episode at once (env wrapper only: a policy cannot end an episode);
``"hold"``      hold still: the env's declared hold action (robogate's envs: no motion, the gripper
                kept as last commanded; see :func:`robogate.scenarios.env_contract.hold_action`);
``"fallback"``  hand over to a fallback policy (e.g. :class:`~robogate.policies.RetreatPolicy` or the
                scripted controller);
``"flag"``      only record the alarm and keep following the policy.

Any action space works: what "hold" sends comes from the env (or, for the policy wrapper alone,
from the policy's ``hold_action`` or a function given), never from a fixed layout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from robogate._utils.threads import torch_threads
from robogate.execution.episode import reset_policy
from robogate.monitor.monitor import FailureMonitor, MonitorDecision
from robogate.policies import Policy
from robogate.scenarios.env_contract import declared, flat_observation, hold_action

__all__ = ["ON_ALARM", "MonitoredEnv", "MonitoredPolicy", "policy_signals"]

ON_ALARM = ("stop", "hold", "fallback", "flag")
"""What a wrapper does once the monitor has raised an alarm."""

Hold = Callable[[np.ndarray | None], np.ndarray]
"""The action that holds the robot still, as a function of the last action taken (None before the first)."""


def policy_signals(policy: Any, obs: Any, monitor: FailureMonitor, space: gym.Space | None = None,
                   last_action: Any = None) -> dict[str, Any]:
    """The keyword arguments of ``monitor.update`` for ``obs``: only the signals its scores read.

    The observation is flattened as recordings flatten it (``space``: the env's observation space);
    ``last_action`` is the action executed at the step before (None at an episode's first step).
    """
    reads = monitor.reads
    signals: dict[str, Any] = {}
    if "observations" in reads:
        signals["observation"] = flat_observation(space, obs)
    if "embeddings" in reads:
        signals["embedding"] = policy.embed(obs)
    if "action_chunks" in reads:
        signals["chunks"] = policy.sample_chunks(obs, monitor.n_chunks)
    if "actions" in reads:
        signals["last_action"] = None if last_action is None else np.asarray(last_action, dtype=np.float32).reshape(-1)
    return signals


def _check_setup(policy: Any, monitor: Any, on_alarm: str, fallback: Any, allowed: tuple[str, ...],
                 hold: Any = None) -> None:
    if not isinstance(policy, Policy):
        raise ValueError(f"policy must have reset() and act(obs), got {type(policy).__name__}")
    if not isinstance(monitor, FailureMonitor):
        raise ValueError(f"monitor must be a FailureMonitor, got {type(monitor).__name__}")
    monitor._check_fitted()
    if on_alarm not in allowed:
        raise ValueError(f"on_alarm must be one of {list(allowed)}, got {on_alarm!r}")
    if (on_alarm == "fallback") != (fallback is not None):
        raise ValueError("on_alarm='fallback' needs a fallback policy, and a fallback policy needs "
                         f"on_alarm='fallback' (got on_alarm={on_alarm!r}, fallback={fallback!r})")
    if fallback is not None and not isinstance(fallback, Policy):
        raise ValueError(f"fallback must have reset() and act(obs), got {type(fallback).__name__}")
    if hold is not None and not callable(hold):
        raise ValueError(f"hold must be a function of the last action, got {type(hold).__name__}")
    needs = {"embeddings": "embed", "action_chunks": "sample_chunks"}
    for signal, method in needs.items():
        if signal in monitor.reads and not callable(getattr(policy, method, None)):
            users = [n for n in monitor.scores_ if signal in monitor.score_objects_[n].signals]
            raise ValueError(f"the monitor's scores {users} read the policy's {method}(), which "
                             f"{type(policy).__name__} does not have; fit a monitor without them for this policy")


class MonitoredPolicy:
    """A policy that consults a failure monitor at every step and acts on its alarm.

    Parameters
    ----------
    policy : Policy
        The monitored policy (``embed`` and ``sample_chunks`` are used when present).
    monitor : FailureMonitor
        A fitted monitor.
    on_alarm : {"hold", "fallback", "flag"}
        What to do from the first alarm to the end of the episode.
    fallback : Policy, optional
        Takes over on alarm with ``on_alarm="fallback"`` (reset at the hand-over).
    hold : callable, optional
        ``hold(last_action)``, the action that holds the robot still with ``on_alarm="hold"``
        (None before the first action). Default: the policy's own ``hold_action`` (robogate's
        policies have one), else zeros shaped like the policy's actions.
    observation_space : gymnasium.Space, optional
        The env's observation space, to flatten dict observations as recordings do (default:
        a dict is flattened by sorted key, as Gymnasium orders a ``Dict`` space).

    Attributes
    ----------
    alarm_step : int or None
        The step of the episode's first alarm.
    decision : MonitorDecision or None
        The monitor's decision at the latest step.
    source : str
        Who chose the latest action: ``"policy"``, ``"hold"`` or ``"fallback"``.
    """

    def __init__(self, policy: Policy, monitor: FailureMonitor, on_alarm: str = "hold",
                 fallback: Policy | None = None, hold: Hold | None = None,
                 observation_space: gym.Space | None = None) -> None:
        _check_setup(policy, monitor, on_alarm, fallback, ("hold", "fallback", "flag"), hold)
        self.policy, self.monitor, self.on_alarm, self.fallback = policy, monitor, on_alarm, fallback
        self.hold = hold if hold is not None else getattr(policy, "hold_action", None)
        self.observation_space = observation_space
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        """Start an episode: reset the policy (with ``seed`` if its ``reset`` takes one), the
        monitor, and the alarm."""
        reset_policy(self.policy, seed)
        self.monitor.reset()
        self.alarm_step: int | None = None
        self.decision: MonitorDecision | None = None
        self.source = "policy"
        self._last_action: np.ndarray | None = None

    @property
    def taken_over(self) -> bool:
        """True once an alarm has handed control away from the policy."""
        return self.alarm_step is not None and self.on_alarm != "flag"

    def observe(self, obs: np.ndarray) -> MonitorDecision:
        """Score ``obs`` with the monitor; the first alarm is latched in ``alarm_step``."""
        with torch_threads():
            self.decision = self.monitor.update(**policy_signals(self.policy, obs, self.monitor,
                                                                 self.observation_space, self._last_action))
        if self.decision.alarm and self.alarm_step is None:
            self.alarm_step = self.decision.step
            if self.on_alarm == "fallback":
                self.fallback.reset()
        return self.decision

    def respond(self, obs: np.ndarray, proposed: np.ndarray | None) -> np.ndarray:
        """The action to execute, given the policy's ``proposed`` action and the latched alarm."""
        if not self.taken_over:
            action, self.source = proposed, "policy"
        elif self.on_alarm == "hold":
            action, self.source = self._hold(obs), "hold"
        else:
            with torch_threads():
                action, self.source = self.fallback.act(obs), "fallback"
        self._last_action = np.asarray(action, dtype=np.float32).reshape(-1)
        return action

    def _hold(self, obs: Any) -> np.ndarray:
        if self.hold is not None:
            return np.asarray(self.hold(self._last_action), dtype=np.float32)
        shape_of = self._last_action if self._last_action is not None else self.policy.act(obs)
        return np.zeros_like(np.asarray(shape_of, dtype=np.float32))

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Observe, then act: the policy's action until an alarm, then the alarm's response."""
        self.observe(obs)
        with torch_threads():
            proposed = None if self.taken_over else self.policy.act(obs)
        return self.respond(obs, proposed)


class MonitoredEnv(gym.Wrapper):
    """A Gymnasium env whose steps are watched by a failure monitor.

    Before executing each action, the wrapper scores the current observation with
    ``monitor`` (through ``policy``'s embedding and sampled chunks) and, once an alarm
    is raised, stops the episode, holds position, hands over to ``fallback``, or only
    flags. ``reset`` also resets the policy and the monitor.

    Every ``info`` carries ``"monitor"`` (the step's :class:`MonitorDecision`),
    ``"alarm_step"`` (the first alarm's step, or None) and ``"action_source"``
    (``"policy"``, ``"hold"``, ``"fallback"`` or ``"stop"``). On ``"stop"`` the action
    is not executed: the step returns the same observation, reward 0,
    ``truncated=True`` and ``info["outcome"] = "stopped"`` (the wrapper's own outcome).

    Parameters
    ----------
    env : gymnasium.Env
        Any env robogate runs: "hold" sends its declared hold action
        (:func:`robogate.scenarios.env_contract.hold_action`), and observations are flattened by its space.
    policy : Policy
        The policy whose actions are passed to :meth:`step`.
    monitor : FailureMonitor
        A fitted monitor.
    on_alarm : {"stop", "hold", "fallback", "flag"}
    fallback : Policy, optional
        Required with ``on_alarm="fallback"``; a fallback with ``check_env(env)`` (e.g.
        :class:`~robogate.policies.RetreatPolicy`) checks there that it can drive the env.

    Examples
    --------
    >>> env = MonitoredEnv(gym.make(env_id), flow, monitor, on_alarm="hold")  # doctest: +SKIP
    >>> obs, info = env.reset(seed=0)                                          # doctest: +SKIP
    >>> obs, reward, terminated, truncated, info = env.step(flow.act(obs))     # doctest: +SKIP
    >>> info["alarm_step"], info["monitor"].scores                             # doctest: +SKIP
    """

    def __init__(self, env: gym.Env, policy: Policy, monitor: FailureMonitor, on_alarm: str = "stop",
                 fallback: Policy | None = None) -> None:
        _check_setup(policy, monitor, on_alarm, fallback, ON_ALARM)
        if callable(getattr(fallback, "check_env", None)):
            fallback.check_env(env)
        super().__init__(env)
        self.on_alarm = on_alarm
        self.controller = MonitoredPolicy(policy, monitor, "flag" if on_alarm == "stop" else on_alarm, fallback,
                                          hold=lambda last: hold_action(env, last),
                                          observation_space=env.observation_space)
        self._obs: np.ndarray | None = None
        self._stopped = False

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.controller.reset(seed)
        self._obs, self._stopped = obs, False
        info["alarm_step"] = None
        return obs, info

    def step(self, action):
        if self._obs is None or self._stopped:
            raise RuntimeError("step() called before reset() or after the monitor stopped the episode")
        decision = self.controller.observe(self._obs)
        info: dict[str, Any]
        if self.on_alarm == "stop" and self.controller.alarm_step is not None:
            self._stopped = True
            params = declared(self.env, "params")
            info = {"outcome": "stopped", "success": False, "monitor": decision, "alarm_step":
                    self.controller.alarm_step, "action_source": "stop"}
            if params is not None:
                info["params"] = dict(params)
            return self._obs, 0.0, False, True, info
        action = self.controller.respond(self._obs, action)
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._obs = obs
        info.update(monitor=decision, alarm_step=self.controller.alarm_step,
                    action_source=self.controller.source)
        return obs, reward, terminated, truncated, info
