"""VS-ReID (video object segmentation with re-identification) in JAX/Flax."""


def __getattr__(name):
  # Lazy, so that `import vsreid_jax` does not import JAX and Flax.
  if name == 'load_propagation':
    from vsreid_jax.checkpoints import load_propagation  # pylint: disable=g-import-not-at-top
    return load_propagation
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


__all__ = ['load_propagation']
