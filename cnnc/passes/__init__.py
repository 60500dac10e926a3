"""Graph-to-graph passes: inference simplifications, the training graph (autodiff), pipelines."""
