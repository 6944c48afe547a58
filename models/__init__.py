"""Data, base recommenders, the GNN encoder, fusion and metrics."""
