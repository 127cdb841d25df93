"""The benchmark command lines: each runs on a tiny setting and prints its table; bad flags stop
with one argparse error line."""

import argparse
import pathlib
import subprocess
import sys

import pytest

from benchmarks import cli
from vsreid_jax.flow import dis

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _benchmark(name, *args):
  return subprocess.run([sys.executable, '-m', f'benchmarks.{name}', *args], cwd=ROOT,
                        capture_output=True, text=True, check=False)


def _table_rows(stdout, first_cell):
  return [line.split() for line in stdout.splitlines() if line.split()[:1] == [first_cell]]


def test_quality_scores_flow_alone_on_a_synthetic_video(tmp_path):
  result = _benchmark('quality', '--synthetic-videos', '1', '--methods', 'flow-only',
                      '--output', str(tmp_path))
  assert result.returncode == 0, result.stderr
  [row] = [line for line in result.stdout.splitlines() if line.startswith('| flow-only')]
  cells = [cell.strip() for cell in row.strip('|').split('|')]
  assert cells[1] == 'synthetic' and cells[5] == '0 of 1'
  assert 0 < float(cells[2]) < 1
  assert sorted(p.name for p in (tmp_path / 'flow-only' / 'synthetic-1000').glob('*.png'))[0] == '00000.png'


def test_quality_with_all_of_reid_from_ground_truth_needs_no_detector(tmp_path):
  result = _benchmark('quality', '--synthetic-videos', '1', '--methods', 'vs-reid',
                      '--truth-reid', 'both', '--reid-checkpoint', str(tmp_path / 'missing'),
                      '--output', str(tmp_path / 'out'))
  assert result.returncode == 0, result.stderr
  assert 're-ID None, both from ground truth' in result.stdout
  [row] = [line for line in result.stdout.splitlines() if line.startswith('| vs-reid |')]
  assert row.strip('|').split('|')[5].strip() == '1 of 1'


def test_foundation_times_flow_warp_and_evaluation():
  result = _benchmark('foundation', '--frames', '28', '--objects', '1')
  assert result.returncode == 0, result.stderr
  flow_rows = [line for line in result.stdout.splitlines() if line.startswith('DIS flow')]
  assert len(flow_rows) == len(dis.PRESETS)
  # The results are the ground truth shifted by 4 pixels: good but not perfect.
  [evaluation] = [line for line in result.stdout.splitlines() if 'DAVIS evaluation' in line]
  assert 0.5 < float(evaluation.split('J&F ')[1].split(')')[0]) < 1


def test_propagation_forward_times_the_smoke_network():
  result = _benchmark('propagation_forward', '--configs', 'smoke', '--dtypes', 'float32',
                      '--flip', 'no,yes', '--repeats', '1')
  assert result.returncode == 0, result.stderr
  rows = _table_rows(result.stdout, 'smoke')
  assert [(row[1], row[2], row[3]) for row in rows] == [('129', '1', 'no'), ('129', '2', 'yes')]
  assert all(float(row[7]) > 0 for row in rows)


def test_reid_forward_times_detection_and_embedding():
  result = _benchmark('reid_forward', '--configs', 'smoke', '--templates', '2', '--repeats', '1')
  assert result.returncode == 0, result.stderr
  [row] = _table_rows(result.stdout, 'smoke')
  assert all(float(value) > 0 for value in row[1:])


def test_train_throughput_times_a_smoke_step_and_the_pipeline():
  result = _benchmark('train_throughput', '--configs', 'smoke', '--steps', '1')
  assert result.returncode == 0, result.stderr
  [row] = _table_rows(result.stdout, 'smoke')
  assert row[2:4] == ['4', '129'] and float(row[5]) > 0
  assert 'input pipeline' in result.stdout


def test_inference_end_to_end_segments_a_short_video():
  result = _benchmark('inference_end_to_end', '--configs', 'smoke', '--frames', '9',
                      '--objects', '1')
  assert result.returncode == 0, result.stderr
  [row] = _table_rows(result.stdout, 'smoke')
  assert row[1] == '129' and float(row[2]) > 0 and row[-1] == 'MB'


@pytest.mark.parametrize('name, args, message', [
    ('quality', ['--methods', 'flow-only,nope'], 'argument --methods: unknown nope'),
    ('quality', ['--truth-reid', 'both', '--davis-root', 'x'], '--truth-reid needs instance'),
    ('foundation', ['--frames', '4'], '--frames must be at least 28, got 4'),
    ('inference_end_to_end', ['--configs', 'bogus'], "argument --configs: invalid choice: 'bogus'"),
    ('inference_end_to_end', ['--frames', '8'], '--frames must be at least 9, got 8'),
    ('propagation_forward', ['--repeats', '0'], "argument --repeats: expected a positive integer"),
    ('reid_forward', ['--configs', 'default,nope'], 'argument --configs: unknown nope'),
    ('train_throughput', ['--steps', 'x'], "argument --steps: expected a positive integer")])
def test_bad_flags_stop_with_one_line(name, args, message):
  result = _benchmark(name, *args)
  assert result.returncode == 2
  assert message in result.stderr.splitlines()[-1]
  assert 'Traceback' not in result.stderr


def test_argument_types():
  assert cli.positive_int('3') == 3
  for text in ('0', '-2', 'x'):
    with pytest.raises(argparse.ArgumentTypeError, match='positive integer'):
      cli.positive_int(text)
  assert cli.name_list(('a', 'b'))('b,a') == ['b', 'a']
  with pytest.raises(argparse.ArgumentTypeError, match='unknown c; expected some of a,b'):
    cli.name_list(('a', 'b'))('a,c')
