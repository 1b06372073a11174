"""The monitored rollout that ends ``robogate demo``: the learned policy under a shift, watched by the monitor.

:func:`monitored_demo` records the shipped flow policy in its training envelope, calibrates
a :class:`FailureMonitor` with its default settings on those rollouts (saved beside the demo's
sweep), then runs one
episode of a scenario outside the envelope — the place target on a high platform, which the
policy never saw — through :class:`MonitoredEnv` with ``on_alarm="flag"``, so the episode runs
on and both the alarm and the failure it warned of are seen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym

from robogate.envs.interface import CONTROL_HZ
from robogate.executors import Executor
from robogate.monitor.monitor import FailureMonitor
from robogate.monitor.recording import record_rollouts
from robogate.monitor.wrappers import MonitoredEnv
from robogate.shifts import DEMO_SHIFT

__all__ = ["DEMO_SHIFT", "MonitoredDemo", "monitored_demo"]



@dataclass(frozen=True)
class MonitoredDemo:
    """What happened in the monitored episode.

    Attributes
    ----------
    outcome : str
        The episode's outcome.
    steps : int
        Control steps it lasted.
    alarm_step : int or None
        The monitor's first alarm.
    failure_step : int or None
        The failure event's step (None for a success).
    monitor_path : Path
        Where the calibrated monitor was saved.
    triggered : tuple of str
        The scores above their thresholds at the first alarm.
    """

    outcome: str
    steps: int
    alarm_step: int | None
    failure_step: int | None
    monitor_path: Path
    triggered: tuple[str, ...] = ()

    def summary(self) -> str:
        """One sentence for the terminal."""
        def at(step: int) -> str:
            return f"step {step}, {step / CONTROL_HZ:.1f} s"

        alarm = "no alarm"
        if self.alarm_step is not None:
            alarm = f"alarm at {at(self.alarm_step)} ({' and '.join(self.triggered)} over threshold)"
        if self.failure_step is None:
            return f"monitored rollout under {DEMO_SHIFT}: {self.outcome} after {self.steps} steps, {alarm}"
        ending = f"{self.outcome} at {at(self.failure_step)}"
        if self.alarm_step is not None and self.alarm_step <= self.failure_step:
            lead = (self.failure_step - self.alarm_step) / CONTROL_HZ
            return f"monitored rollout under {DEMO_SHIFT}: {alarm}, {lead:.1f} s before the {ending}"
        return f"monitored rollout under {DEMO_SHIFT}: {alarm}; {ending}"


def monitored_demo(
    out: str | Path = "runs/demo/monitor",
    env_id: str = "robogate/PickPlace-Panda-v0",
    calibration_episodes: int = 60,
    seed: int = 1,
    workers: int | None = None,
    progress: bool | None = None,
    status: Callable[[str], object] | None = None,
    executor: str | Executor = "local",
) -> MonitoredDemo:
    """Calibrate a monitor on the shipped flow policy and run one monitored episode under :data:`DEMO_SHIFT`.

    Parameters
    ----------
    out : str or Path
        Folder the calibrated monitor is saved in.
    env_id : str
        An env with a shipped flow checkpoint.
    calibration_episodes : int
        Rollouts recorded in the training envelope (their successes fit and calibrate the monitor).
    seed : int
        Seed of the monitored episode.
    workers : int, optional
        Processes recording the calibration rollouts (None: all cores).
    executor : str or Executor
        Where they run (an Executor, such as the demo sweep's pool, is used as is and left open).
    progress : bool or None
        Draw a progress bar on stderr (None: only when stderr is a terminal).
    status : callable, optional
        Called with one line as each of the two phases starts (monitor calibration, monitored rollout).
    """
    from robogate.policies import FlowPolicy

    say = status if status is not None else (lambda line: None)
    flow = FlowPolicy.pretrained(env_id)
    say(f"monitor calibration: {calibration_episodes} rollouts of the shipped flow policy in its training envelope")
    calibration = record_rollouts(env_id, flow, calibration_episodes, None, 0, executor=executor, workers=workers,
                                  progress=progress)
    monitor = FailureMonitor().fit(calibration)
    path = monitor.save(out)
    say(f"monitored rollout: one episode under {DEMO_SHIFT}, outside the training envelope")
    env = MonitoredEnv(gym.make(env_id), flow, monitor, on_alarm="flag")
    triggered: tuple[str, ...] = ()
    try:
        obs, info = env.reset(seed=seed, options={"params": DEMO_SHIFT})
        steps, done = 0, False
        while not done:
            obs, _, terminated, truncated, info = env.step(flow.act(obs))
            if not triggered and info["alarm_step"] is not None:
                triggered = info["monitor"].above
            steps += 1
            done = terminated or truncated
    finally:
        env.close()
    return MonitoredDemo(info["outcome"], steps, info["alarm_step"], info.get("failure_step"), path, triggered)
