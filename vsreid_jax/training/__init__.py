"""Training the networks: input pipelines, optimisers, the training loop."""
