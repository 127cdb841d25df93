"""Segmenting a DAVIS split: every sequence, resumable, shared among processes, scored; its flags."""

import numpy as np
import pytest

import infer
from conftest import make_davis2016, make_davis2017, moving_squares
from vsreid_jax.data import palette
from vsreid_jax.inference import dataset

NAMES = ('bear', 'camel', 'dog')


@pytest.fixture(name='davis2017')
def fixture_davis2017(tmp_path):
  return make_davis2017(tmp_path / 'davis', {
      'bear': moving_squares(5), 'camel': moving_squares(4, num_objects=1), 'dog': moving_squares(3)})


def segment(root, output, **kwargs):
  lines = []
  kwargs = {'process_index': 0, 'process_count': 1, **kwargs}
  run = dataset.segment_dataset(root, 'val', output, flow_preset='ultrafast', show_progress=False,
                                log=lines.append, **kwargs)
  return run, lines


def png_times(output):
  return {path: path.stat().st_mtime_ns for path in sorted(output.glob('*/*.png'))}


def test_every_sequence_is_segmented_and_a_rerun_skips_them(davis2017, tmp_path):
  output = tmp_path / 'out'
  run, lines = segment(davis2017, output)
  assert run.segmented == NAMES and run.skipped == () and run.timings['frames'] == 12
  assert {'read', 'flow', 'warp', 'write', 'total'} <= set(run.timings)
  for name, frames in zip(NAMES, (5, 4, 3)):
    assert sorted(p.name for p in (output / name).glob('*.png')) == [f'{t:05d}.png' for t in range(frames)]
    assert (output / name / dataset.DONE_MARKER).is_file()
    np.testing.assert_array_equal(palette.read_label_png(output / name / '00000.png'),
                                  palette.read_label_png(davis2017 / 'Annotations/480p' / name / '00000.png'))
  assert [line.split(':')[0] for line in lines] == list(NAMES)
  before = png_times(output)

  rerun, lines = segment(davis2017, output)
  assert rerun.segmented == () and rerun.skipped == NAMES
  assert lines == [f'{name}: skipped, finished by an earlier run' for name in NAMES]
  assert png_times(output) == before
  assert rerun.summary() == '0 sequences segmented, 3 skipped (finished earlier)'


def test_a_sequence_interrupted_before_its_marker_is_segmented_again(davis2017, tmp_path):
  output = tmp_path / 'out'
  segment(davis2017, output)
  (output / 'camel' / dataset.DONE_MARKER).unlink()
  (output / 'dog' / '00002.png').unlink()
  run, _ = segment(davis2017, output)
  assert run.segmented == ('camel', 'dog') and run.skipped == ('bear',)
  assert (output / 'dog' / '00002.png').is_file()


def test_process_one_of_two_takes_every_second_sequence(davis2017, tmp_path):
  run, lines = segment(davis2017, tmp_path / 'out', process_index=1, process_count=2)
  assert run.segmented == ('camel',)
  assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['camel']
  assert lines[0] == 'process 1 of 2: 1 of the 3 sequences of val'


def test_process_zero_evaluates_the_finished_sequences_only(davis2017, tmp_path):
  run, lines = segment(davis2017, tmp_path / 'out', process_index=0, process_count=2, evaluate=True)
  assert run.segmented == ('bear', 'dog')
  assert lines[-1].startswith('evaluating 2 of 3 sequences')
  assert sorted(o.name for o in run.report.objects) == ['bear_1', 'bear_2', 'dog_1', 'dog_2']
  assert (tmp_path / 'out' / 'global_results-val.csv').is_file()
  other, _ = segment(davis2017, tmp_path / 'out', process_index=1, process_count=2, evaluate=True)
  assert other.report is None


def test_infer_segments_a_davis2016_split_and_prints_the_scores(tmp_path, capsys):
  squares = moving_squares(4, num_objects=1)
  root = make_davis2016(tmp_path / 'davis', {'blackswan': squares, 'cows': squares[:3]})
  run = infer.main(['--davis-root', str(root), '--output', str(tmp_path / 'out'), '--evaluate',
                    '--flow-preset', 'ultrafast', '--flow-only'])
  assert run.segmented == ('blackswan', 'cows')
  out = capsys.readouterr().out
  assert '2 sequences segmented, 0 skipped (finished earlier); 7 frames in' in out
  assert 'J&F-Mean' in out and 'blackswan_1' in out
  # The first frame is copied from the ground truth: object 1, not the annotation's 255.
  assert palette.read_label_png(tmp_path / 'out' / 'cows' / '00000.png').max() == 1


def test_void_pixels_of_the_first_annotation_become_background(tmp_path):
  labels = moving_squares(4)
  labels[:, :3, :3] = palette.VOID_LABEL
  root = make_davis2017(tmp_path / 'davis', {'bear': labels})
  run, _ = segment(root, tmp_path / 'out', evaluate=True)
  assert [o.name for o in run.report.objects] == ['bear_1', 'bear_2']
  for t in range(4):
    assert palette.read_label_png(tmp_path / 'out' / 'bear' / f'{t:05d}.png').max() == 2


@pytest.mark.parametrize('flags, expected', [
    (['--sequence', 'x', '--davis-root', 'y'], 'use either --sequence or --davis-root, not both'),
    (['--davis-root', 'ROOT'], 'missing --output'),
    (['--davis-root', 'ROOT', '--first-mask', 'm.png', '--output', 'o'], '--first-mask is for --sequence'),
    (['--sequence', 'x', '--first-mask', 'm.png', '--output', 'o', '--evaluate', '--process-count', '2'],
     '--evaluate, --process-count needs --davis-root'),
    (['--davis-root', 'ROOT', '--output', 'o', '--flow-only', '--finetune-steps', '3'],
     '--finetune-steps cannot be used with --flow-only'),
    (['--davis-root', 'ROOT', '--output', 'o', '--no-reid', '--reid-checkpoint', 'r'],
     '--reid-checkpoint cannot be used with --no-reid'),
    (['--davis-root', 'ROOT', '--output', 'o', '--no-reid', '--verifier-checkpoint', 'v'],
     '--verifier-checkpoint cannot be used with --no-reid'),
    (['--davis-root', 'ROOT', '--output', 'o', '--flow-only', '--verifier-checkpoint', 'v'],
     '--verifier-checkpoint cannot be used with --flow-only'),
    (['--davis-root', 'ROOT', '--output', 'o', '--no-reid', '--no-verifier'],
     '--no-verifier cannot be used with --no-reid'),
    (['--davis-root', 'ROOT', '--output', 'o', '--no-verifier', '--verifier-checkpoint', 'v'],
     '--verifier-checkpoint cannot be used with --no-verifier'),
    (['--demo', '--flow-only', '--split', 'train'],
     '--split, --flow-only cannot be used with --demo'),
    (['--davis-root', 'ROOT', '--output', 'o', '--finetune-steps', '-1'],
     '--finetune-steps must be 0 or more, got -1'),
    (['--davis-root', 'ROOT', '--output', 'o', '--process-index', '2', '--process-count', '2'],
     'process index 2 must lie in 0..1 for 2 processes'),
    (['--davis-root', 'ROOT', '--split', 'train', '--output', 'o'], 'split file not found'),
])
def test_bad_dataset_flags_give_one_line(davis2017, flags, expected, capsys):
  flags = [str(davis2017) if flag == 'ROOT' else flag for flag in flags]
  with pytest.raises(SystemExit) as exit_info:
    infer.main(flags)
  assert exit_info.value.code == 2
  err = capsys.readouterr().err
  assert expected in err and err.count('\n') == 1, err
