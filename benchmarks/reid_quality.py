"""Re-ID detector quality: detection recall, retrieval top-1 and re-ID hits on held-out video.

  python -m benchmarks.reid_quality --checkpoint models/reid_demo \
      --davis-root ../shared/data/DAVIS2016 --split val --synthetic-videos 5

Rows: synthetic videos from seeds never used in training (annotated objects
queried, look-alike distractors competing as templates) and, with
--davis-root, the sequences of a DAVIS split; for the trained checkpoint and
for the same network with random weights. See `vsreid_jax.reid.evaluation`
for the measures; instances of fewer than --min-area pixels are skipped.
"""

import argparse
import dataclasses
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from vsreid_jax.data import synthetic
from vsreid_jax.data.davis import DavisDataset
from vsreid_jax.errors import exit_on_input_error
from vsreid_jax.inference import demo
from vsreid_jax.reid.evaluation import ReidCounts, score_video
from vsreid_jax.reid.frame_detector import FrameDetector
from vsreid_jax.training.reid_data import object_boxes

def synthetic_videos(count, seed):
  for index in range(count):
    video = synthetic.generate_video(dataclasses.replace(demo.SYNTHETIC_CLIP, seed=seed + index))
    queries = np.arange(video.boxes.shape[1]) < video.config.num_objects
    yield video.frames, video.boxes, video.visible_area, queries


def davis_videos(root, split):
  dataset = DavisDataset(root, split)
  for name in dataset.sequence_names:
    sequence = dataset.sequence(name)
    count = sequence.num_objects
    boxes = np.zeros((len(sequence.annotation_paths), count, 4), np.float32)
    area = np.zeros(boxes.shape[:2])
    for t in range(len(boxes)):
      labels = sequence.read_annotation(t)
      ids, found = object_boxes(labels)
      for k, box in zip(ids, found):
        if k <= count:
          boxes[t, k - 1], area[t, k - 1] = box, np.sum(labels == k)
    yield sequence.frames, boxes, area, None


def measure(detector, videos, min_area):
  counts = ReidCounts()
  for frames, boxes, area, queries in videos:
    counts.add(score_video(detector, frames, boxes, np.asarray(area) >= min_area, queries))
  return counts


@exit_on_input_error
def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--checkpoint', type=pathlib.Path, default=demo.SHIPPED_REID)
  parser.add_argument('--davis-root', type=pathlib.Path)
  parser.add_argument('--split', default='val')
  parser.add_argument('--synthetic-videos', type=int, default=5)
  parser.add_argument('--seed', type=int, default=1000, help='seed of the first synthetic video')
  parser.add_argument('--min-area', type=int, default=100)
  args = parser.parse_args()
  trained = FrameDetector.from_checkpoint(args.checkpoint)
  random_variables = jax.jit(trained.model.init)(
      jax.random.key(0), jnp.zeros((1,) + trained.input_size + (3,)))
  untrained = FrameDetector(trained.model, random_variables, trained.settings, trained.input_size)
  sources = [(f'synthetic x{args.synthetic_videos}, seeds {args.seed}+',
              lambda: synthetic_videos(args.synthetic_videos, args.seed))]
  if args.davis_root:
    sources.append((f'DAVIS {args.split}', lambda: davis_videos(args.davis_root, args.split)))
  print(f'{args.checkpoint}, frames fitted into {trained.input_size[0]}x{trained.input_size[1]}, '
        f'{jax.devices()[0].device_kind}')
  print('| data | weights | queries | detection recall | retrieval top-1 (chance) | re-ID hits | '
        'score own / best other template | s |')
  print('|---|---|---|---|---|---|---|---|')
  for name, videos in sources:
    for weights, detector in (('trained', trained), ('random', untrained)):
      start = time.perf_counter()
      counts = measure(detector, videos(), args.min_area)
      recall, top1, hits, chance = counts.rates()
      own, other = counts.mean_scores()
      print(f'| {name} | {weights} | {counts.queries} | {recall:.3f} | {top1:.3f} ({chance:.3f}) | '
            f'{hits:.3f} | {own:.3f} / {other:.3f} | {time.perf_counter() - start:.0f} |',
            flush=True)


if __name__ == '__main__':
  main()
