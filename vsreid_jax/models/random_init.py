"""Random variables for speed measurements and tests, drawn without compiling a network's `init`."""

import jax
import numpy as np


def he_random_variables(abstract, seed=0):
  """Concrete NumPy variables for a tree of shapes (such as `jax.eval_shape(model.init, ...)`).

  Kernels are He-normal (activations keep a sane range through deep stacks),
  BatchNorm scales and running variances are 1, everything else is 0.
  """
  rng = np.random.default_rng(seed)

  def sample(path, leaf):
    name = path[-1].key
    if name == 'kernel':
      return rng.normal(0, np.sqrt(2 / np.prod(leaf.shape[:-1])), leaf.shape).astype(leaf.dtype)
    return (np.ones if name in ('scale', 'var') else np.zeros)(leaf.shape, leaf.dtype)

  return jax.tree_util.tree_map_with_path(sample, abstract)
