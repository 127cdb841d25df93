"""VS-ReID (video object segmentation with re-identification) in JAX/Flax."""
