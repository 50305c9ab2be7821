"""streamflow_traces."""
