"""streamflow: plan, run and measure ML workflows across edge, hub and cloud workers."""
from streamflow.dataflow.flow import Dataflow, Input, Stream
from streamflow.dataflow.operator import Capability, Operator, OperatorContext, Output
from streamflow import operators  # one function per operator; importing it makes them Stream methods

__version__ = "0.1.0"
__all__ = ["Capability", "Dataflow", "Input", "Operator", "OperatorContext", "Output", "Stream", "operators"]
