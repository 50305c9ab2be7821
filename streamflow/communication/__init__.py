"""Moving batches and progress between worker processes over ZeroMQ (timely's communication/)."""
