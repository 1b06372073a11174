"""The registry of failure scores the monitor combines (plug-ins, as the executors are).

Built in:

``"rnd"``          :class:`RND` -- novelty of the policy's embedding (FIPER's RND);
``"obs_rnd"``      :class:`ObservationRND` -- the same on the observation state (any policy);
``"ace"``          :class:`ActionChunkEntropy` -- spread of the sampled action chunks (FIPER's ACE);
``"consistency"``  :class:`ChunkConsistency` -- disagreement of successive chunks' overlap (STAC);
``"density"``      :class:`EmbeddingDensity` -- negative log-likelihood of the embedding (logpZO's idea);
``"dynamics"``     :class:`DynamicsConsistency` -- surprise of a forward model of successful transitions;
``"predictor"``    :class:`FailurePredictor` -- learnt from labelled rollouts of both outcomes.

Add your own with :func:`register`::

    from robogate.monitor import scores
    scores.register("mine", MyScore)          # a class following scores.Score
    FailureMonitor(scores=["rnd", "mine"])
"""

from robogate.monitor.scores.ace import ActionChunkEntropy
from robogate.monitor.scores.base import (
    PerStepScore,
    Score,
    ScoreStream,
    Step,
    check_score,
    make,
    name_of,
    names,
    register,
    registered,
    usable,
)
from robogate.monitor.scores.consistency import ChunkConsistency
from robogate.monitor.scores.density import EmbeddingDensity
from robogate.monitor.scores.dynamics import DynamicsConsistency
from robogate.monitor.scores.predictor import FailurePredictor
from robogate.monitor.scores.rnd import RND, ObservationRND

register("rnd", RND)
register("obs_rnd", ObservationRND)
register("ace", ActionChunkEntropy)
register("consistency", ChunkConsistency)
register("density", EmbeddingDensity)
register("dynamics", DynamicsConsistency)
register("predictor", FailurePredictor)

__all__ = [
    "RND",
    "ActionChunkEntropy",
    "ChunkConsistency",
    "DynamicsConsistency",
    "EmbeddingDensity",
    "FailurePredictor",
    "ObservationRND",
    "PerStepScore",
    "Score",
    "ScoreStream",
    "Step",
    "check_score",
    "make",
    "name_of",
    "names",
    "register",
    "registered",
    "usable",
]
