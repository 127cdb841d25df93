"""VS-ReID multi-round inference: the official davis_test.py settings (and our re-ID scorer's).

infer.py runs with these settings; its flags change some (--no-flip; --no-reid and
--flow-preset act on the run). From Python: `VSReID.from_checkpoint(dir, get_config(), ...)`.
"""

import ml_collections


def get_config(arg=None):
  """Returns the inference config; it takes no variants (`arg` must be None)."""
  if arg is not None:
    raise ValueError(f'unknown inference config {arg!r}; it has no variants')
  config = ml_collections.ConfigDict()
  # Square network patch side; 0 takes the propagation checkpoint's model.patch_size (official 449).
  config.patch_size = 0
  # Average each prediction with that of the mirrored patch (flow x negated).
  config.flip = True
  # Patches per network call are padded to one of these sizes; each compiles once.
  config.buckets = (1, 2, 4, 8, 16)
  # Fraction of a box's size added on each side before cropping.
  config.box_enlarge = 0.15
  # An object keeps propagating while its first-frame area <= this x its previous-frame area.
  config.max_area_shrink = 10
  # False: forward propagation only, no re-identification rounds.
  config.reid = True
  # A re-ID box must score above this.
  config.reid_threshold = 0.5
  # ... and overlap no present object's robust box (official IoU) by more than this.
  config.occlusion_threshold = 0.3
  # Robust box of an object: its pixels' (1 - q) to q quantiles of rows and columns.
  config.occlusion_quantile = 0.99
  # Our re-ID detector only (the official scores come from files): a box scores only for the
  # object whose first-frame template is nearest, among the objects' and those of first-frame
  # detections that show no object (followed through the video); 0 for the others.
  config.reid_nearest_template = True
  # Ours too: a mask whose box's re-ID similarity with the object's first-frame template is
  # below this does not look like the object. The rounds look for the object in such frames as
  # where it is missing; re-propagation from a recovery replaces such masks, and stops where
  # its own new mask falls below (that frame loses the mask); those left after the rounds are
  # dropped; re-ID scorers are not shown them. Masks on a look-alike the scorer follows (box
  # IoU >= 0.3) also count as missing for the rounds and are replaced by re-propagation, but
  # are otherwise kept, unless the mask verifier (infer.py --verifier-checkpoint, the shipped
  # one by default) finds them more like a first-frame non-object than like their object: those
  # do not look like it. -1: every mask counts (official).
  config.reid_keep_threshold = 0.3
  # Objects whose person score exceeds this take part in the person round first.
  config.person_threshold = 0.5
  # Network runs in the re-ID box, the first guided by the first-frame mask.
  config.recovery_iterations = 5
  # Joint passes over the recovered object and its neighbours afterwards.
  config.refinement_iterations = 5
  # Dtype of the stored per-object probability crops ('float16' or 'float32').
  config.storage_dtype = 'float16'
  # OpenCV DIS preset when no pre-computed flow is given.
  config.flow_preset = 'medium'
  return config

