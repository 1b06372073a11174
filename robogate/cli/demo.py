"""``robogate demo``: the whole loop on the embedded defaults, ending with a monitored rollout.

The demo sweeps the scripted controller on the Panda (:data:`DEMO`), gates a box-handling cell
until decided, writes the report, then (:func:`monitored_demo`) records the shipped flow policy in
its training envelope, calibrates a :class:`~robogate.monitor.FailureMonitor` with its default
settings on those rollouts (saved beside the demo's sweep), and runs one episode of a scenario
outside the envelope — the place target on a high platform, which the policy never saw —
through :class:`~robogate.monitor.MonitoredEnv` with ``on_alarm="flag"``, so the episode runs on
and both the alarm and the failure it warned of are seen.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robogate.cli.flags import PROGRESS, WORKERS

__all__ = ["DEMO", "MonitoredDemo", "add_demo", "monitored_demo"]


DEMO = {"env_id": "robogate/PickPlace-Panda-v0", "policy": "scripted", "n_lhs": 160, "n_boundary": 80,
        "batch_size": 20, "seed": 0,
        "envelope": ["friction=0.4:1.2", "mass=0.05:0.5", "size=0.03:0.07", "ik_noise=0:0.003", "obstacles=0",
                     "shape=box", "placement=center,left,right,near,far,left_near,right_near,left_far,right_far"],
        "max_failure_rate": 0.1, "gate_experiments": 300}
"""The embedded demo: a small two-stage sweep of the scripted controller on the Panda; the gate for a
box-handling cell, run until decided (``gate --run``); the report; then a monitored rollout of the
learned policy."""


DEMO_PHASES = 5
"""The demo's phases, one status line each: sweep, gate, report, monitor calibration, monitored rollout."""


def add_demo(subparsers: Any) -> None:
    """Register ``robogate demo``."""
    p = subparsers.add_parser(
        "demo",
        parents=[WORKERS, PROGRESS],
        help="sweep the scripted controller on the Panda (240 episodes), gate an envelope until decided, write "
             "the report, then watch the learned policy fail under a shift with the runtime monitor",
        description=(
            f"Run a {DEMO['n_lhs']}+{DEMO['n_boundary']} two-stage sweep of the scripted controller on "
            f"{DEMO['env_id']} over the 8-D default space; run experiments inside the envelope "
            f"{' '.join(DEMO['envelope'])} until the gate is decided at a {DEMO['max_failure_rate']:.0%} limit "
            f"(as 'robogate gate --run' does, at most {DEMO['gate_experiments']}); write DIR/report/report.html "
            "with that verdict; then calibrate a failure monitor on successful rollouts of the shipped flow policy "
            "and run one monitored episode outside its training envelope. Re-running continues an interrupted demo."
        ),
    )
    p.add_argument("--out", default="runs/demo", metavar="DIR", help="results folder (default runs/demo)")
    p.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from robogate.envs.scene import default_space
    from robogate.execution.executors import make_executor
    from robogate.reports.sweep import write_report
    from robogate.scenarios.envelope import Envelope
    from robogate.sweep.gate_run import run_gate
    from robogate.sweep.run import RESUME_ALLOW, run_sweep
    from robogate.sweep.summary import format_summary, summarize_sweep

    phases = iter(range(1, DEMO_PHASES + 1))

    def status(text: str) -> None:  # one line as each phase starts, seen at once in a log too
        print(f"[{next(phases)}/{DEMO_PHASES}] {text}", flush=True)

    with make_executor("local", args.workers) as executor:  # one pool of workers for every phase
        status(f"sweep: {DEMO['n_lhs']} uniform + {DEMO['n_boundary']} boundary-focused experiments of the "
               f"{DEMO['policy']} controller on {DEMO['env_id']}, stored in {args.out}")
        df = run_sweep(
            DEMO["env_id"], DEMO["policy"], args.out, n_lhs=DEMO["n_lhs"], n_boundary=DEMO["n_boundary"],
            batch_size=DEMO["batch_size"], seed=DEMO["seed"], executor=executor, resume=RESUME_ALLOW,
            progress=args.progress,
        )
        print(format_summary(summarize_sweep(df)), flush=True)
        space = default_space()  # the demo sweeps the default space
        status(f"gate: experiments inside a box-handling envelope until its {DEMO['max_failure_rate']:.0%} limit "
               f"is decided (at most {DEMO['gate_experiments']})")
        decision = run_gate(args.out, Envelope.parse(DEMO["envelope"], space), DEMO["max_failure_rate"],
                            max_experiments=DEMO["gate_experiments"], executor=executor, progress=args.progress)
        print(f"gate: {decision.reason}", flush=True)
        status("report: risk map, danger zones and the gate's verdict")
        path = write_report([args.out], None, envelope=DEMO["envelope"], max_failure_rate=DEMO["max_failure_rate"])
        print(f"report: {path} and {path.with_name('report.md')}", flush=True)
        watched = monitored_demo(Path(args.out) / "monitor", DEMO["env_id"], progress=args.progress, status=status,
                                 executor=executor)  # the sweep's workers, their simulators loaded
    print(watched.summary())
    return 0


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
        from robogate.envs.interface import CONTROL_HZ
        from robogate.scenarios.shifts import DEMO_SHIFT

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
    executor: Any = "local",
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
    import gymnasium as gym

    from robogate.monitor import FailureMonitor, MonitoredEnv, record_rollouts
    from robogate.policies import FlowPolicy
    from robogate.scenarios.shifts import DEMO_SHIFT

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
