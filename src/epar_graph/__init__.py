"""epar-graph: the linked-data knowledge graph of EMA-evaluated medicines."""

__version__ = "0.1.0"
