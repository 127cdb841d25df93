"""The Colab notebook's code runs as written (shell and pip lines aside), on a small clip."""

import json
import pathlib

import numpy as np
from PIL import Image

from conftest import make_davis2017, moving_squares

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / 'notebooks' / 'vsreid_jax_colab.ipynb'


def code_cells():
  cells = json.loads(NOTEBOOK.read_text())['cells']
  return [''.join(line for line in cell['source'] if not line.lstrip().startswith(('%', '!')))
          for cell in cells if cell['cell_type'] == 'code']


def test_notebook_segments_a_clip_and_shows_an_overlay(checkpoint_dir, reid_dir, tmp_path,
                                                      monkeypatch):
  monkeypatch.chdir(REPO)
  root = make_davis2017(tmp_path / 'davis', {'squares': moving_squares(num_frames=4, height=48, width=64)})
  cells = code_cells()
  assert len(cells) == 4
  namespace = {}
  exec(cells[0], namespace)  # pylint: disable=exec-used
  exec(cells[1], namespace)  # pylint: disable=exec-used
  # Tiny random networks, one fine-tuning step and a 4-frame clip instead of the shipped ones.
  namespace.update(CHECKPOINT=checkpoint_dir, REID_CHECKPOINT=reid_dir, FINETUNE_STEPS=1,
                   SEQUENCE=root / 'JPEGImages' / '480p' / 'squares',
                   FIRST_MASK=root / 'Annotations' / '480p' / 'squares' / '00000.png',
                   OUTPUT=tmp_path / 'colab')
  exec(cells[2], namespace)  # pylint: disable=exec-used
  assert len(list((tmp_path / 'colab' / 'masks').glob('*.png'))) == 4
  # The re-ID rules of the inference config, as infer.py's.
  frames = namespace['video'].read_frame_folder(namespace['SEQUENCE'])
  first_mask = np.asarray(Image.open(namespace['FIRST_MASK']))
  scorer = namespace['segmenter'].reid_factory(frames, first_mask)
  assert scorer._nearest_template  # pylint: disable=protected-access
  assert scorer._verifier is not None  # the shipped mask verifier  # pylint: disable=protected-access
  assert (tmp_path / 'colab' / 'overlay.mp4').is_file()
  last_line = cells[3].strip().splitlines()[-1]
  exec(cells[3].strip()[:-len(last_line)], namespace)  # pylint: disable=exec-used
  shown = eval(last_line, namespace)  # pylint: disable=eval-used
  assert isinstance(shown, Image.Image) and shown.size == (64, 48)
  assert np.asarray(shown).shape == (48, 64, 3)
