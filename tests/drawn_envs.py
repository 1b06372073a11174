"""drawn_envs: the lab's puck slide of ``mylab_envs`` with a picture, to show that robogate films any env that renders.

Importing it (with tests/ on the path) registers ``DrawnSlide-v0`` (robogate names it ``drawn_envs:DrawnSlide-v0``)
and ``BlankSlide-v0``, which claims to render but returns no image.
"""

from __future__ import annotations

import numpy as np
from gymnasium.envs.registration import register
from mylab_envs import CONTROL_HZ, MAX_STEPS, TABLE_END, SlideEnv


class DrawnSlideEnv(SlideEnv):
    """``SlideEnv`` drawing the table (grey), the target line (green) and the puck (blue) in ``render()``."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": CONTROL_HZ}

    def __init__(self, render_mode: str | None = None) -> None:
        super().__init__()
        self.render_mode = render_mode

    def render(self) -> np.ndarray:
        image = np.full((40, 120, 3), 255, dtype=np.uint8)
        column = lambda x: int(np.clip(x / (TABLE_END + 0.2) * 119, 0, 119))  # noqa: E731
        image[22:26, : column(TABLE_END)] = (150, 150, 150)
        image[10:26, column(self.params["distance"])] = (0, 160, 0)
        image[14:22, max(column(self.x) - 3, 0): column(self.x) + 3] = (30, 60, 200)
        return image


class BlankSlideEnv(DrawnSlideEnv):
    """Lists ``rgb_array`` among its render modes, but draws nothing."""

    def render(self) -> None:
        return None


register(id="DrawnSlide-v0", entry_point="drawn_envs:DrawnSlideEnv", max_episode_steps=MAX_STEPS)
register(id="BlankSlide-v0", entry_point="drawn_envs:BlankSlideEnv", max_episode_steps=MAX_STEPS)
