"""Setters for the model properties a scenario changes, one module per simulator.

:mod:`robogate.physics.mujoco` (body mass, geom friction, geom size) and
:mod:`robogate.physics.pybullet` (mass and lateral friction through ``changeDynamics``) are
what a :class:`~robogate.ScenarioWrapper` ``apply`` hook calls. Each imports its simulator only
when a setter runs, so ``import robogate`` needs neither MuJoCo nor PyBullet.
"""
