"""What a record may hold and how keys partition: the record type system, checked alike in one
process and across processes, and the deterministic key hash."""
from streamflow.records.keys import NAN, PartitionKeyError, canonical, check_keys, key_hash
from streamflow.records.typesystem import RecordTypeError, check_batch

__all__ = ["NAN", "PartitionKeyError", "RecordTypeError", "canonical", "check_batch", "check_keys", "key_hash"]
