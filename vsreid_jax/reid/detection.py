"""Detection and re-ID inference: detections with embeddings, embeddings of given boxes, scores.

Every function works on batches with static shapes: a fixed maximum number
of boxes per frame, and a validity mask that marks the padding.
"""

import functools

import jax
import jax.numpy as jnp

from vsreid_jax.errors import InputError
from vsreid_jax.models import boxes as box_ops
from vsreid_jax.models.detector import BOX_DELTA_WEIGHTS
from vsreid_jax.reid.model import DetectionSettings


def postprocess_detections(proposals, proposal_mask, class_logits, box_deltas, image_size,
                           settings=DetectionSettings()):
  """Detections of one frame from its box-head outputs, as torchvision's `postprocess_detections`.

  Class probabilities are the softmax of the logits; each class's box is its
  deltas decoded on the proposal and clipped to the frame; candidates above
  the score threshold and the minimum size go through NMS per class (or
  across classes, see `DetectionSettings`).

  Args:
    proposals: [P, 4] boxes the head was applied to.
    proposal_mask: [P] bool, False for padding proposals.
    class_logits: [P, C + 1] logits, background first.
    box_deltas: [P, C + 1 or 1, 4] deltas weighted by `BOX_DELTA_WEIGHTS`.
    image_size: (height, width) of the frame.
    settings: `DetectionSettings`.

  Returns:
    dict of 'boxes' [D, 4], 'scores' [D] (probability of the detected class),
    'labels' [D] int32 classes in 1..C, 'sources' [D] int32 index of the
    proposal each detection comes from, and 'valid' [D] bool, by decreasing
    score, D = `settings.max_detections`; padding rows are zeros.
  """
  num_proposals, num_classes = class_logits.shape[0], class_logits.shape[1] - 1
  probabilities = jax.nn.softmax(class_logits)[:, 1:]
  boxes = box_ops.decode_boxes(box_deltas, proposals[:, None], BOX_DELTA_WEIGHTS)
  boxes = box_ops.clip_boxes(boxes, *image_size)
  # Class-agnostic regression has one box for every class.
  boxes = jnp.broadcast_to(boxes, (num_proposals, num_classes + 1, 4))[:, 1:]
  if settings.class_agnostic_nms:
    labels = jnp.argmax(probabilities, axis=-1)
    scores = jnp.max(probabilities, axis=-1)
    boxes = jnp.take_along_axis(boxes, labels[:, None, None], axis=1)[:, 0]
    sources = jnp.arange(num_proposals)
  else:
    labels = jnp.tile(jnp.arange(num_classes), num_proposals)
    scores, boxes = probabilities.reshape(-1), boxes.reshape(-1, 4)
    sources = jnp.repeat(jnp.arange(num_proposals), num_classes)
  sizes = boxes[:, 2:] - boxes[:, :2]
  valid = (proposal_mask[sources] & (scores > settings.score_threshold) &
           jnp.all(sizes >= settings.min_size, axis=-1))
  _, top = jax.lax.top_k(jnp.where(valid, scores, -1.0), min(settings.pre_nms_top_k, len(scores)))
  labels, scores, boxes, sources, valid = (x[top] for x in (labels, scores, boxes, sources, valid))
  # Each class shifted to its own region of the plane keeps NMS within classes (torchvision).
  shift = 0.0 if settings.class_agnostic_nms else (labels * (max(image_size) + 1.0))[:, None]
  kept, mask = box_ops.non_max_suppression(boxes + shift, scores, settings.nms_threshold,
                                           settings.max_detections, valid)
  pad = lambda x: jnp.where(mask.reshape(mask.shape + (1,) * (x.ndim - 1)), x[kept], 0)
  return {'boxes': pad(boxes), 'scores': pad(scores), 'labels': pad(labels + 1).astype(jnp.int32),
          'sources': pad(sources).astype(jnp.int32), 'valid': mask}


def _check_frames(frames):
  if frames.ndim != 4 or frames.shape[-1] != 3:
    raise InputError(f'frames must be [batch, height, width, 3] RGB, got shape {frames.shape}')
  return frames.astype(jnp.float32)


@functools.partial(jax.jit, static_argnames=('model', 'settings'))
def detect(model, variables, frames, settings=DetectionSettings()):
  """Detections of a batch of frames, with the class probabilities and embedding of each.

  Args:
    model: a `FasterRCNN` (static).
    variables: its variables.
    frames: [B, H, W, 3] RGB frames, 0..255.
    settings: `DetectionSettings` (static).

  Returns:
    dict of 'boxes' [B, D, 4], 'scores' [B, D], 'labels' [B, D],
    'class_probabilities' [B, D, C + 1] (of the source proposal, background
    first), 'embeddings' [B, D, E] (unit vectors of the source proposal) and
    'valid' [B, D] bool, D = `settings.max_detections`; padding rows are zeros.

  Raises:
    InputError: frames are not a batch of RGB images.
  """
  frames = _check_frames(frames)
  outputs = model.apply(variables, frames)
  postprocess = functools.partial(postprocess_detections, image_size=frames.shape[1:3],
                                  settings=settings)
  detections = jax.vmap(postprocess)(outputs['proposals'], outputs['proposal_mask'],
                                     outputs['class_logits'], outputs['box_deltas'])
  sources, valid = detections.pop('sources'), detections['valid']
  for name, key in (('class_probabilities', 'class_logits'), ('embeddings', 'embeddings')):
    values = jnp.take_along_axis(outputs[key], sources[..., None], axis=1)
    if key == 'class_logits':
      values = jax.nn.softmax(values)
    detections[name] = jnp.where(valid[..., None], values, 0.0)
  return detections


def _box_descriptions(module, frames, boxes):
  outputs = module.box_outputs(module.features(frames), boxes)
  return {'embeddings': outputs['embeddings'],
          'class_probabilities': jax.nn.softmax(outputs['class_logits'])}


@functools.partial(jax.jit, static_argnames='model')
def describe_boxes(model, variables, frames, boxes, valid):
  """Embeddings and class probabilities of given boxes, such as the objects' boxes in the first
  frame (their embeddings are the re-ID templates).

  Args:
    model: a `FasterRCNN` (static).
    variables: its variables.
    frames: [B, H, W, 3] RGB frames, 0..255.
    boxes: [B, K, 4] boxes (x0, y0, x1, y1) in pixels; degenerate boxes and
      boxes outside the frame give finite outputs.
    valid: [B, K] bool, False for padding.

  Returns:
    dict of 'embeddings' [B, K, E] unit vectors and 'class_probabilities'
    [B, K, C + 1] (background first), zeros where `valid` is False.

  Raises:
    InputError: the shapes do not match.
  """
  frames = _check_frames(frames)
  if boxes.ndim != 3 or boxes.shape[0] != frames.shape[0] or boxes.shape[-1] != 4:
    raise InputError(f'boxes must be [batch={frames.shape[0]}, K, 4], got shape {boxes.shape}')
  if valid.shape != boxes.shape[:2]:
    raise InputError(f'valid must be [batch, K] = {boxes.shape[:2]}, got shape {valid.shape}')
  if boxes.shape[1] == 0:
    return {'embeddings': jnp.zeros(boxes.shape[:2] + (model.embedding_features,)),
            'class_probabilities': jnp.zeros(boxes.shape[:2] + (model.num_classes + 1,))}
  outputs = model.apply(variables, frames, boxes.astype(jnp.float32), method=_box_descriptions)
  return {name: jnp.where(valid[..., None], value, 0.0) for name, value in outputs.items()}


def embed(model, variables, frames, boxes, valid):
  """[B, K, E] unit embeddings of given boxes, zeros where `valid` is False (see
  `describe_boxes`)."""
  return describe_boxes(model, variables, frames, boxes, valid)['embeddings']


def boxes_from_masks(labels, num_objects):
  """Tight boxes of objects 1..`num_objects` in label maps (void and other labels ignored).

  Args:
    labels: [..., H, W] integer label maps.
    num_objects: static number of objects.

  Returns:
    ([..., num_objects, 4] float32 boxes (x0, y0, x1, y1), max exclusive,
    zeros for absent objects; [..., num_objects] bool, True where present).
  """
  height, width = labels.shape[-2:]
  masks = labels[..., None, :, :] == jnp.arange(1, num_objects + 1)[:, None, None]
  rows, columns = jnp.any(masks, axis=-1), jnp.any(masks, axis=-2)
  present = jnp.any(rows, axis=-1)
  boxes = jnp.stack([jnp.argmax(columns, axis=-1), jnp.argmax(rows, axis=-1),
                     width - jnp.argmax(columns[..., ::-1], axis=-1),
                     height - jnp.argmax(rows[..., ::-1], axis=-1)], axis=-1)
  return jnp.where(present[..., None], boxes, 0).astype(jnp.float32), present


def reid_scores(candidate_embeddings, template_embeddings):
  """[..., M, N] cosine similarities of M candidates with N templates; 0 against zero vectors."""
  def normalise(x):
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
  return jnp.einsum('...md,...nd->...mn', normalise(candidate_embeddings),
                    normalise(template_embeddings))
