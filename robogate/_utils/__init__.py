"""Helpers that import nothing of robogate: argument checks, seeds, plot ticks, small torch networks, the
versions a run records, the console's rules for bars and warnings, torch's thread count, lazy exports.

Every other layer may import these; they import only the standard library and third-party packages.
"""
