"""Online features: pure rules (events -> writes; reads + now -> values).

No Redis, Kafka or Faust here: stores execute the ``Write``/``Read`` values.
See docs/features.md for every feature, and ``registry`` for the entry points.
"""

from streams.features.categories import batch_contexts, context_reads, context_reads_for_batch
from streams.features.config import FeatureConfig, Window, WriteContext
from streams.features.registry import all_reads, all_writes, assemble, emit_all, feature_names

__all__ = [
    "FeatureConfig", "Window", "WriteContext", "all_reads", "all_writes", "assemble",
    "batch_contexts", "context_reads", "context_reads_for_batch", "emit_all", "feature_names",
]
