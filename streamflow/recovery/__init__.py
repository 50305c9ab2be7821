"""Checkpoints of operator state at completed epochs, the store that keeps them, and the
protocols that restore them (recovery after a lost worker, live reconfiguration)."""
