"""Faster R-CNN (ResNet C4) with an identification head: boxes, class scores and embeddings."""

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vsreid_jax.models import boxes as box_ops
from vsreid_jax.models.folding import EPSILON
from vsreid_jax.models.mp2s import RGB_MEAN
from vsreid_jax.models.resnet import RESNETS, conv_init, scale_width
from vsreid_jax.models.roi_align import roi_align

ModuleDef = Any

# torchvision's weights of the box head's deltas; the RPN's are all 1.
BOX_DELTA_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
STRIDE = 16


class BoxHead(nn.Module):
  """The last ResNet stage on each box's pooled features, averaged to one vector per box.

  Attributes:
    num_blocks: blocks of the stage.
    block_cls: `BasicBlock` or `Bottleneck`.
    width: channel multiplier, as the backbone's.
    strides: stride of the first block (14x14 boxes -> 7x7).
    frozen_bn: normalise with the running statistics even when training.
    bn_momentum: weight of the old running statistics in their update, as `ResNet`'s.
    dtype: computation dtype.
  """
  num_blocks: int
  block_cls: ModuleDef
  width: float = 1.0
  strides: int = 2
  frozen_bn: bool = True
  bn_momentum: float = 0.9
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train=False):
    """[N, S, S, C] pooled box features -> [N, C'] box vectors."""
    conv = functools.partial(nn.Conv, use_bias=False, dtype=self.dtype, kernel_init=conv_init)
    norm = functools.partial(nn.BatchNorm, use_running_average=self.frozen_bn or not train,
                             momentum=self.bn_momentum, epsilon=EPSILON, dtype=self.dtype)
    features = scale_width(512, self.width)
    for j in range(self.num_blocks):
      # Named as the fourth stage of `ResNet`, so ImageNet weights map by name.
      x = self.block_cls(features, conv, norm, self.strides if j == 0 else 1,
                         name=f'layer4_{j}')(x)
    return jnp.mean(x, axis=(1, 2))


def propose(objectness, deltas, anchors, image_size, pre_nms_top_k, post_nms_top_k,
            nms_threshold, min_size=1e-3):
  """RPN proposals of one image: top-k anchors, decoded, clipped, small ones dropped, NMS.

  Args:
    objectness: [A] logits.
    deltas: [A, 4] RPN deltas of the anchors.
    anchors: [A, 4].
    image_size: (height, width) boxes are clipped to.
    pre_nms_top_k: best-scoring anchors kept before NMS.
    post_nms_top_k: static number of proposals.
    nms_threshold: IoU above which NMS suppresses a proposal.
    min_size: proposals narrower or shorter than this (e.g. outside the image) are dropped.

  Returns:
    (boxes [P, 4], logits [P], mask [P]), P = `post_nms_top_k`, by decreasing
    score; rows where `mask` is False are padding.
  """
  logits, indices = jax.lax.top_k(objectness, min(pre_nms_top_k, objectness.shape[0]))
  boxes = box_ops.clip_boxes(box_ops.decode_boxes(deltas[indices], anchors[indices]), *image_size)
  sizes = boxes[:, 2:] - boxes[:, :2]
  large_enough = jnp.all(sizes >= min_size, axis=-1)
  kept, mask = box_ops.non_max_suppression(boxes, logits, nms_threshold, post_nms_top_k,
                                           large_enough)
  return boxes[kept], logits[kept], mask


class RPNHead(nn.Module):
  """A 3x3 conv shared by the anchors of a cell, then per-anchor objectness logits and deltas."""
  num_anchors: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    """[B, h, w, C] features -> objectness [B, h * w * A], deltas [B, h * w * A, 4]."""
    init = nn.initializers.normal(0.01)
    conv = functools.partial(nn.Conv, dtype=self.dtype, kernel_init=init)
    x = nn.relu(conv(x.shape[-1], (3, 3), name='conv')(x))
    objectness = conv(self.num_anchors, (1, 1), name='objectness')(x)
    deltas = conv(4 * self.num_anchors, (1, 1), name='deltas')(x)
    batch = x.shape[0]
    return (objectness.reshape(batch, -1).astype(jnp.float32),
            deltas.reshape(batch, -1, 4).astype(jnp.float32))


class FasterRCNN(nn.Module):
  """Faster R-CNN with conv features at stride 16 and an L2-normalised embedding per box.

  Attributes:
    backbone_cls: a `ResNet` partial of the first three stages (stride 16).
    box_head_cls: a `BoxHead` partial, the fourth stage.
    num_classes: object classes, background excluded (class 0 of the scores).
    anchor_scales: anchor sizes in pixels.
    aspect_ratios: anchor height / width ratios.
    pre_nms_top_k: anchors kept before the RPN's NMS, per image.
    post_nms_top_k: proposals per image (static).
    rpn_nms_threshold: IoU threshold of the RPN's NMS.
    roi_size: side of the RoIAlign grid.
    sampling_ratio: RoIAlign samples per bin and axis.
    embedding_features: size of the re-ID embedding.
    class_agnostic_boxes: one box regression for all classes instead of one per class.
    frozen_bn: BatchNorm normalises with its running statistics in training too, as when
      fine-tuning ImageNet weights; False learns them, for training from scratch.
    dtype: computation dtype of the convolutions; outputs are float32.
  """
  backbone_cls: ModuleDef
  box_head_cls: ModuleDef
  num_classes: int
  anchor_scales: Sequence[float] = (32, 64, 128, 256, 512)
  aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0)
  pre_nms_top_k: int = 6000
  post_nms_top_k: int = 300
  rpn_nms_threshold: float = 0.7
  roi_size: int = 14
  sampling_ratio: int = 2
  embedding_features: int = 256
  class_agnostic_boxes: bool = False
  frozen_bn: bool = True
  dtype: Any = jnp.float32

  def setup(self):
    self.backbone = self.backbone_cls(frozen_bn=self.frozen_bn, dtype=self.dtype)
    self.rpn = RPNHead(len(self.anchor_scales) * len(self.aspect_ratios), dtype=self.dtype)
    self.box_head = self.box_head_cls(frozen_bn=self.frozen_bn, dtype=self.dtype)
    box_classes = 1 if self.class_agnostic_boxes else self.num_classes + 1
    self.class_scores = nn.Dense(self.num_classes + 1, kernel_init=nn.initializers.normal(0.01))
    self.box_deltas = nn.Dense(4 * box_classes, kernel_init=nn.initializers.normal(0.001))
    self.embedding = nn.Dense(self.embedding_features, kernel_init=nn.initializers.normal(0.01))

  def features(self, images, train=False):
    """[B, H, W, 3] RGB 0..255 -> [B, ceil(H / 16), ceil(W / 16), C] features at `STRIDE`."""
    return self.backbone((images - jnp.asarray(RGB_MEAN)).astype(self.dtype), train=train)

  def box_outputs(self, features, boxes, train=False):
    """Class logits, box deltas and embeddings of given boxes.

    Args:
      features: [B, h, w, C] from `features`.
      boxes: [B, P, 4] boxes in image pixels.
      train: training mode of the box head's BatchNorm.

    Returns:
      dict of 'class_logits' [B, P, num_classes + 1], 'box_deltas'
      [B, P, num_classes + 1 (or 1 if class-agnostic), 4] (weighted by
      `BOX_DELTA_WEIGHTS`) and 'embeddings' [B, P, embedding_features], all float32.
    """
    batch, num_boxes = boxes.shape[:2]
    pooled = roi_align(features, boxes, (self.roi_size, self.roi_size), 1 / STRIDE,
                       self.sampling_ratio)
    vectors = self.box_head(pooled.reshape((batch * num_boxes,) + pooled.shape[2:]), train=train)
    vectors = vectors.astype(jnp.float32).reshape(batch, num_boxes, -1)
    embeddings = self.embedding(vectors)
    embeddings = embeddings / jnp.maximum(jnp.linalg.norm(embeddings, axis=-1, keepdims=True),
                                          1e-12)
    return {'class_logits': self.class_scores(vectors),
            'box_deltas': self.box_deltas(vectors).reshape(batch, num_boxes, -1, 4),
            'embeddings': embeddings}

  def rpn_outputs(self, features, image_size):
    """Anchors, RPN outputs and proposals of `features` (from `features`).

    Args:
      features: [B, h, w, C] from `features`.
      image_size: (height, width) of the images, which proposals are clipped to.

    Returns:
      dict of 'anchors' [A, 4], 'rpn_objectness' [B, A], 'rpn_deltas' [B, A, 4],
      'proposals' [B, P, 4] and 'proposal_mask' [B, P] (False for padding),
      P = `post_nms_top_k`.
    """
    objectness, deltas = self.rpn(features)
    anchors = box_ops.generate_anchors(features.shape[1], features.shape[2], STRIDE,
                                       self.anchor_scales, self.aspect_ratios)
    propose_image = functools.partial(
        propose, anchors=anchors, image_size=image_size, pre_nms_top_k=self.pre_nms_top_k,
        post_nms_top_k=self.post_nms_top_k, nms_threshold=self.rpn_nms_threshold)
    # As torchvision, no gradient flows through the proposals' coordinates.
    proposals, _, mask = jax.vmap(propose_image)(jax.lax.stop_gradient(objectness),
                                                 jax.lax.stop_gradient(deltas))
    return {'anchors': anchors, 'rpn_objectness': objectness, 'rpn_deltas': deltas,
            'proposals': proposals, 'proposal_mask': mask}

  def __call__(self, images, train=False):
    """RPN outputs and proposals, and the box outputs of the proposals.

    Args:
      images: [B, H, W, 3] RGB, 0..255.
      train: training mode (BatchNorm statistics unless frozen); needs
        `mutable=['batch_stats']` unless every BatchNorm is frozen.

    Returns:
      dict of `rpn_outputs` and the `box_outputs` of the proposals.
    """
    features = self.features(images, train)
    outputs = self.rpn_outputs(features, images.shape[1:3])
    return {**outputs, **self.box_outputs(features, outputs['proposals'], train)}


def _c4(resnet_cls, width=1.0):
  """`FasterRCNN` arguments that split a `RESNETS` network into a stride-16 backbone and a head."""
  stage_sizes, block_cls = resnet_cls.keywords['stage_sizes'], resnet_cls.keywords['block_cls']
  backbone = functools.partial(resnet_cls, stage_sizes=stage_sizes[:3], strides=(1, 2, 2),
                               dilations=(1, 1, 1), stem='standard', width=width)
  head = functools.partial(BoxHead, num_blocks=stage_sizes[3], block_cls=block_cls, width=width)
  return {'backbone_cls': backbone, 'box_head_cls': head}


FasterRCNNResNet50 = functools.partial(FasterRCNN, **_c4(RESNETS[50]))
# The shipped CPU demo detector: ResNet-18 at half width.
FasterRCNNSmall = functools.partial(FasterRCNN, **_c4(RESNETS[18], width=0.5))
# For tests and smoke runs: ResNet-18 at a quarter of the width, few proposals.
FasterRCNNTiny = functools.partial(
    FasterRCNN, **_c4(RESNETS[18], width=0.25), anchor_scales=(16, 32, 64),
    pre_nms_top_k=64, post_nms_top_k=8)
