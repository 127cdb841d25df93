"""SGD with per-group learning-rate and weight-decay multipliers, as the official config sets them."""

import optax

WEIGHT, BIAS, NORM, FROZEN = 'weight', 'bias', 'norm', 'frozen'


def parameter_groups(params, trainable_branches=('rgb', 'flow')):
  """A tree like `params` naming each leaf's group.

  Kernels are WEIGHT; a module holding a 'scale' is a BatchNorm, and both its
  leaves are NORM; other biases are BIAS. Leaves of branches not in
  `trainable_branches` are FROZEN (the flow branch's modules are prefixed
  'flow_', see `models.MP2S`).
  """
  def groups(tree, branch):
    if 'scale' in tree:
      return {name: NORM if branch in trainable_branches else FROZEN for name in tree}
    labelled = {}
    for name, value in tree.items():
      if isinstance(value, dict):
        labelled[name] = groups(value, branch or ('flow' if name.startswith('flow_') else 'rgb'))
      else:
        group = WEIGHT if name == 'kernel' else BIAS
        labelled[name] = group if branch in trainable_branches else FROZEN
    return labelled
  return groups(dict(params), None)


def learning_rate_schedule(config):
  """Linear warm-up to `learning_rate`, then polynomial decay to `end_learning_rate`."""
  opt = config.optimizer
  decay = optax.polynomial_schedule(
      init_value=opt.learning_rate, end_value=opt.end_learning_rate, power=opt.power,
      transition_steps=max(config.num_train_steps - opt.warmup_steps, 1))
  if opt.warmup_steps == 0:
    return decay
  warmup = optax.linear_schedule(0.0, opt.learning_rate, opt.warmup_steps)
  return optax.join_schedules([warmup, decay], [opt.warmup_steps])


def make_optimizer(config, params):
  """SGD with momentum: weights lr x1 / decay x1, biases lr x2 / no decay, BatchNorm lr x1 / decay x1."""
  opt = config.optimizer
  schedule = learning_rate_schedule(config)

  def sgd(multiplier, decay):
    decayed = [optax.add_decayed_weights(opt.weight_decay)] if decay else []
    return optax.chain(*decayed, optax.sgd(lambda step: multiplier * schedule(step), momentum=opt.momentum))

  transforms = {
      WEIGHT: sgd(1.0, decay=True),
      BIAS: sgd(opt.bias_lr_multiplier, decay=False),
      NORM: sgd(1.0, decay=True),
      FROZEN: optax.set_to_zero(),
  }
  return optax.partition(transforms, parameter_groups(params, tuple(config.trainable_branches)))
