"""Progress tracking: epochs, pointstamp counts and frontiers (timely dataflow's progress/)."""
from streamflow.progress.antichain import DONE, MutableAntichain
from streamflow.progress.change_batch import ChangeBatch
from streamflow.progress.topology import Location, Topology
from streamflow.progress.tracker import ProgressTracker

__all__ = ["DONE", "ChangeBatch", "Location", "MutableAntichain", "ProgressTracker", "Topology"]
