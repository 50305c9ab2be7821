"""streamflow_planner."""
