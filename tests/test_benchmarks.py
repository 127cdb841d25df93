"""The quality benchmark's command line, on the cheapest method."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _quality(*args):
  return subprocess.run([sys.executable, '-m', 'benchmarks.quality', *args], cwd=ROOT,
                        capture_output=True, text=True, check=False)


def test_quality_scores_flow_alone_on_a_synthetic_video(tmp_path):
  result = _quality('--synthetic-videos', '1', '--methods', 'flow-only', '--output', str(tmp_path))
  assert result.returncode == 0, result.stderr
  [row] = [line for line in result.stdout.splitlines() if line.startswith('| flow-only')]
  cells = [cell.strip() for cell in row.strip('|').split('|')]
  assert cells[1] == 'synthetic' and cells[5] == '0 of 1'
  assert 0 < float(cells[2]) < 1
  assert sorted(p.name for p in (tmp_path / 'flow-only' / 'synthetic-1000').glob('*.png'))[0] == '00000.png'


def test_quality_names_an_unknown_method_in_one_line(tmp_path):
  result = _quality('--methods', 'flow-only,nope', '--output', str(tmp_path))
  assert result.returncode == 2
  assert 'unknown --methods nope' in result.stderr
  assert 'Traceback' not in result.stderr
