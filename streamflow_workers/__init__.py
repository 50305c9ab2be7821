"""streamflow_workers."""
