"""Pick-and-place environments for three arms, registered with Gymnasium.

``import robogate`` (or ``import robogate.envs``) registers one id per arm and
lists them in :data:`ENV_IDS`.
"""

from gymnasium.envs.registration import register, registry

ENV_IDS: list[str] = []

for _robot in ("Panda", "UR5e", "XArm6"):
    _env_id = f"robogate/PickPlace-{_robot}-v0"
    if _env_id not in registry:
        register(
            id=_env_id,
            entry_point="robogate.envs.pick_place_env:PickPlaceEnv",
            kwargs={"robot": _robot},
        )
    ENV_IDS.append(_env_id)

__all__ = ["ENV_IDS"]
