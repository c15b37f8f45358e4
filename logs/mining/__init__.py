"""Log template mining: masking, tokenizing and the Drain tree.

Pure Python with no database access, so every worker can rebuild the same
state from the stored templates.
"""

from logs.mining.drain import WILDCARD, Cluster, Drain
from logs.mining.masking import MAX_TOKENS, tokenize

__all__ = ["MAX_TOKENS", "WILDCARD", "Cluster", "Drain", "tokenize"]
