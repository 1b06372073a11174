"""Running episodes: one (:func:`run_episode`, :func:`record_episode`), a trial of a sweep on a worker,
many on an executor (a local process pool, Ray, or one registered by a user), and how a policy is
named so that it travels to any worker (:mod:`robogate.execution.specs`).

Imports :mod:`robogate._utils`, :mod:`robogate.scenarios`, robogate's envs and policies.
"""

from robogate._utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "run_episode": "robogate.execution.episode",
    "record_episode": "robogate.execution.episode",
    "Capture": "robogate.execution.episode",
    "EpisodeRecording": "robogate.execution.episode",
    "Trial": "robogate.execution.trial",
    "run_trial": "robogate.execution.trial",
    "make_policy": "robogate.execution.specs",
    "record_episodes": "robogate.execution.batch",
    "executors": "robogate.execution.executors",
})
