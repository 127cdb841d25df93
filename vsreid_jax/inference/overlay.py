"""Overlay videos: label maps blended over their frames in DAVIS palette colours."""

import os
import pathlib

import cv2
import numpy as np

from vsreid_jax.data import palette

DAVIS_FPS = 24


def blend_labels(frame, labels, alpha=0.5):
  """uint8 RGB [H, W, 3]: each object's pixels mixed with its palette colour (void left as is)."""
  colours = palette.DAVIS_PALETTE[labels].astype(np.float32)
  mixed = np.rint((1 - alpha) * frame.astype(np.float32) + alpha * colours).astype(np.uint8)
  objects = (labels > 0) & (labels != palette.VOID_LABEL)
  return np.where(objects[..., None], mixed, frame)


def _write_atomically(path, data):
  partial = path.with_name(f'.{path.name}.partial')
  partial.write_bytes(data)
  os.replace(partial, path)


class OverlayVideo:
  """Writes blended frames to an mp4 file ('mp4v'), or to JPEGs where that codec is missing.

  A context manager: the video appears under its name only once closed without
  an error, so an interrupted run never leaves a truncated file. Without an
  mp4v encoder, frames go to `<path without .mp4>_overlay/<name>.jpg` instead.
  """

  def __init__(self, path, fps=DAVIS_FPS, alpha=0.5, log=print):
    """Args:
      path: the .mp4 file.
      fps: frames per second of the video.
      alpha: weight of the palette colour in masked pixels.
      log: callable for the one line that says the JPEG fallback was taken.
    """
    self.path = pathlib.Path(path)
    self.fps, self.alpha, self.log = fps, alpha, log
    self._partial = self.path.with_name(f'.{self.path.stem}.partial{self.path.suffix}')
    self._writer = None
    self.jpeg_dir = None

  def add(self, frame, labels, name):
    """Appends `frame` (uint8 RGB) with `labels` blended in; `name` names its JPEG in the fallback."""
    blended = cv2.cvtColor(blend_labels(frame, labels, self.alpha), cv2.COLOR_RGB2BGR)
    if self._writer is None and self.jpeg_dir is None:
      self._open(blended.shape[1], blended.shape[0])
    if self._writer is not None:
      self._writer.write(blended)
    else:
      _write_atomically(self.jpeg_dir / f'{name}.jpg', cv2.imencode('.jpg', blended)[1].tobytes())

  def _open(self, width, height):
    self.path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(self._partial), cv2.VideoWriter_fourcc(*'mp4v'), self.fps,
                             (width, height))
    if writer.isOpened():
      self._writer = writer
      return
    writer.release()
    self.jpeg_dir = self.path.with_name(f'{self.path.stem}_overlay')
    self.jpeg_dir.mkdir(exist_ok=True)
    self.log(f'no mp4v video encoder in OpenCV: overlay frames written as JPEGs to {self.jpeg_dir}')

  def close(self, complete=True):
    """Finishes the video; with `complete` False (after an error) drops the partial file."""
    if self._writer is None:
      return
    self._writer.release()
    self._writer = None
    if complete:
      os.replace(self._partial, self.path)
    else:
      self._partial.unlink(missing_ok=True)

  def __enter__(self):
    return self

  def __exit__(self, error_type, error, traceback):
    self.close(complete=error_type is None)


def montage(rows, column_titles, gap=4):
  """A grid of images with a title over each column and at the left of each row.

  Args:
    rows: list of (row title, list of uint8 RGB [H, W, 3] images of one size).
    column_titles: one title per column.
    gap: pixels between images.

  Returns:
    uint8 RGB image.
  """
  height, width = rows[0][1][0].shape[:2]
  font, scale, thickness = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1
  label_width = max(cv2.getTextSize(title, font, scale, thickness)[0][0] for title, _ in rows) + 2 * gap
  header = 24
  canvas = np.full((header + len(rows) * (height + gap), label_width + len(column_titles) * (width + gap),
                    3), 255, np.uint8)
  for j, title in enumerate(column_titles):
    cv2.putText(canvas, title, (label_width + j * (width + gap), header - 8), font, scale, (0, 0, 0),
                thickness, cv2.LINE_AA)
  for i, (title, images) in enumerate(rows):
    top = header + i * (height + gap)
    cv2.putText(canvas, title, (gap, top + height // 2), font, scale, (0, 0, 0), thickness,
                cv2.LINE_AA)
    for j, image in enumerate(images):
      left = label_width + j * (width + gap)
      canvas[top:top + height, left:left + width] = image
  return canvas
