"""digest: a daily digest of new research papers, matched to each subscriber's interests."""

__version__ = "0.1.0"
