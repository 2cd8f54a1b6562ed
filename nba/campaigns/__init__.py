"""The closed loop: campaigns with control groups and exploration, outcomes recorded, impact
measured, the engine learning what each action really does, and off-policy evaluation.

Modules: `history` (the SQLite interaction history), `plan` (control group, exploration,
propensities), `outcomes` (validated recording), `impact` (incremental retention and value
against the control group), `learn` (per-action effects with uncertainty, shrunk to the
catalogue), `ope` (IPS, SNIPS, doubly robust), `simulator` (a documented response world),
`power` (the treated and control customers each action needs for its effect to be measurable).
Importing the package does no work.
"""

from __future__ import annotations

from nba.campaigns.history import History, HistoryError, default_history_path

__all__ = ["History", "HistoryError", "default_history_path"]
