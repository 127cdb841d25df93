"""Palette PNGs, mask formats, lazy frame folders and DAVIS datasets on disk."""

import numpy as np
import pytest
from PIL import Image

from conftest import make_davis2016, make_davis2017, moving_squares, write_jpeg
from vsreid_jax.data import palette, video
from vsreid_jax.data.davis import DavisDataset
from vsreid_jax.errors import InputError


def test_davis_palette_colours():
  assert palette.DAVIS_PALETTE.shape == (256, 3)
  assert palette.DAVIS_PALETTE[:5].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128]]
  assert palette.DAVIS_PALETTE[255].tolist() == [224, 224, 192]
  assert len({tuple(c) for c in palette.DAVIS_PALETTE}) == 256


def test_palette_png_round_trip_is_indexed_and_atomic(tmp_path):
  labels = np.random.default_rng(0).integers(0, 256, (23, 31)).astype(np.uint8)
  path = tmp_path / 'out' / '00000.png'
  palette.write_label_png(path, labels)
  image = Image.open(path)
  assert image.mode == 'P'
  assert np.array(image.getpalette()[:768]).reshape(256, 3).tolist() == palette.DAVIS_PALETTE.tolist()
  np.testing.assert_array_equal(palette.read_label_png(path), labels)
  np.testing.assert_array_equal(palette.read_mask(path), labels)
  assert [p.name for p in path.parent.iterdir()] == ['00000.png']  # no partial file left


def test_write_label_png_rejects_bad_arrays(tmp_path):
  with pytest.raises(InputError, match='must be 2-D'):
    palette.write_label_png(tmp_path / 'a.png', np.zeros((2, 3, 3)))
  with pytest.raises(InputError, match='0..255'):
    palette.write_label_png(tmp_path / 'a.png', np.full((2, 3), 300))


def test_mask_formats_give_the_same_labels(tmp_path):
  labels = np.zeros((12, 16), np.uint8)
  labels[2:6, 2:6] = 1
  labels[7:10, 8:14] = 2
  Image.fromarray(labels, mode='L').save(tmp_path / 'gray.png')
  np.testing.assert_array_equal(palette.read_mask(tmp_path / 'gray.png'), labels)
  Image.fromarray(palette.DAVIS_PALETTE[labels]).save(tmp_path / 'rgb.png')
  np.testing.assert_array_equal(palette.read_mask(tmp_path / 'rgb.png'), labels)
  binary = (labels == 1)
  Image.fromarray(binary.astype(np.uint8) * 255, mode='L').save(tmp_path / 'binary.png')
  np.testing.assert_array_equal(palette.read_mask(tmp_path / 'binary.png'), binary)
  Image.fromarray(binary).convert('1').save(tmp_path / 'bits.png')
  np.testing.assert_array_equal(palette.read_mask(tmp_path / 'bits.png'), binary)
  # Grayscale with an alpha channel, as one DAVIS 2016 annotation is stored.
  Image.fromarray(labels, mode='L').convert('LA').save(tmp_path / 'alpha.png')
  np.testing.assert_array_equal(palette.read_mask(tmp_path / 'alpha.png'), labels)
  np.testing.assert_array_equal(palette.read_label_png(tmp_path / 'alpha.png'), labels)


def test_colours_outside_the_palette_are_rejected(tmp_path):
  rgb = np.zeros((4, 4, 3), np.uint8)
  rgb[1, 1] = (10, 20, 30)
  Image.fromarray(rgb).save(tmp_path / 'odd.png')
  with pytest.raises(InputError, match=r'odd\.png: colours not in the DAVIS palette: \(10, 20, 30\)'):
    palette.read_mask(tmp_path / 'odd.png')


def test_unreadable_and_missing_images(tmp_path):
  (tmp_path / 'broken.png').write_bytes(b'not a png')
  with pytest.raises(InputError, match=r'broken\.png: unreadable image file'):
    palette.read_mask(tmp_path / 'broken.png')
  with pytest.raises(InputError, match=r'absent\.png: file not found'):
    palette.read_mask(tmp_path / 'absent.png')


def _frame_folder(folder, names, size=(20, 30)):
  rng = np.random.default_rng(1)
  for name in names:
    write_jpeg(folder / name, rng.integers(0, 255, size + (3,), dtype=np.uint8))
  return folder


def test_frame_folder_natural_order_and_lazy_reads(tmp_path, monkeypatch):
  folder = _frame_folder(tmp_path / 'video', ['frame10.jpg', 'frame2.jpg', 'frame1.png'])
  (folder / 'notes.txt').write_text('ignored')
  decoded = []
  real_read = video.read_rgb
  monkeypatch.setattr(video, 'read_rgb', lambda path: decoded.append(path.name) or real_read(path))
  frames = video.read_frame_folder(folder)
  assert frames.names == ['frame1', 'frame2', 'frame10']
  assert len(frames) == 3 and frames.size == (20, 30)
  assert decoded == []  # nothing decoded until a frame is asked for
  frame = frames[2]
  assert decoded == ['frame10.jpg']
  assert frame.shape == (20, 30, 3) and frame.dtype == np.uint8
  with pytest.raises(IndexError):
    frames[3]


def test_frame_folder_reads_rgb_order(tmp_path):
  rgb = np.zeros((8, 8, 3), np.uint8)
  rgb[..., 0] = 200  # pure red
  Image.fromarray(rgb).save(tmp_path / '0.png')
  frame = video.read_frame_folder(tmp_path)[0]
  assert frame[..., 0].min() == 200 and frame[..., 2].max() == 0


def test_frame_folder_errors(tmp_path):
  with pytest.raises(InputError, match='frame folder not found'):
    video.read_frame_folder(tmp_path / 'none')
  (tmp_path / 'empty').mkdir()
  with pytest.raises(InputError, match='no frames'):
    video.read_frame_folder(tmp_path / 'empty')
  folder = _frame_folder(tmp_path / 'mixed', ['00000.jpg'])
  _frame_folder(folder, ['00001.jpg'], size=(21, 30))
  with pytest.raises(InputError, match=r'00001\.jpg: frame size 30x21 differs'):
    video.read_frame_folder(folder)
  folder = _frame_folder(tmp_path / 'corrupt', ['00000.jpg'])
  (folder / '00001.jpg').write_bytes(b'\xff\xd8 truncated')
  with pytest.raises(InputError, match=r'00001\.jpg: unreadable image file'):
    video.read_frame_folder(folder)


def test_first_mask_checks(tmp_path):
  frames = video.read_frame_folder(_frame_folder(tmp_path / 'video', ['0.jpg']))
  labels = np.zeros((20, 30), np.uint8)
  palette.write_label_png(tmp_path / 'empty.png', labels)
  with pytest.raises(InputError, match='contains no object'):
    video.read_first_mask(tmp_path / 'empty.png', frames)
  palette.write_label_png(tmp_path / 'small.png', np.ones((10, 30), np.uint8))
  with pytest.raises(InputError, match='mask size 30x10 differs from the frame size 30x20'):
    video.read_first_mask(tmp_path / 'small.png', frames)
  labels[3:8, 3:9] = 2
  palette.write_label_png(tmp_path / 'good.png', labels)
  np.testing.assert_array_equal(video.read_first_mask(tmp_path / 'good.png', frames), labels)


def test_write_label_sequence_names_files_after_frames(tmp_path):
  labels = moving_squares(num_frames=3)
  count = video.write_label_sequence(tmp_path / 'out', ['a', 'b', 'c'], iter(labels))
  assert count == 3
  assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['a.png', 'b.png', 'c.png']
  np.testing.assert_array_equal(palette.read_label_png(tmp_path / 'out' / 'c.png'), labels[2])


def test_davis2017_dataset(tmp_path):
  labels = moving_squares(num_frames=4)
  labels[1, 0, :3] = palette.VOID_LABEL
  root = make_davis2017(tmp_path, {'squares': labels, 'other': labels[:, :, ::-1]})
  dataset = DavisDataset(root, 'val')
  assert dataset.layout == '2017' and dataset.sequence_names == ['squares', 'other']
  sequence = dataset.sequence('squares')
  assert len(sequence.frames) == 4 and sequence.annotation_names == ['00000', '00001', '00002', '00003']
  assert sequence.num_objects == 2
  np.testing.assert_array_equal(sequence.read_annotation(1), labels[1])  # void kept as 255
  assert sequence.frames[0].shape == (40, 60, 3)
  with pytest.raises(InputError, match="sequence 'missing' is not in"):
    dataset.sequence('missing')


def test_davis2016_dataset_reads_binary_masks_as_object_one(tmp_path):
  masks = moving_squares(num_frames=3, num_objects=1)
  root = make_davis2016(tmp_path, {'square': masks})
  dataset = DavisDataset(root, 'val')
  assert dataset.layout == '2016'
  sequence = dataset.sequence('square')
  np.testing.assert_array_equal(sequence.read_annotation(2), masks[2])
  assert sequence.num_objects == 1
  with pytest.raises(InputError, match='2017.*split file not found'):
    DavisDataset(root, 'val', layout='2017')


def test_davis2016_errors_name_the_file(tmp_path):
  with pytest.raises(InputError, match=r'split file not found .*2017/val.txt and .*480p/val.txt'):
    DavisDataset(tmp_path)  # neither layout
  root = make_davis2016(tmp_path / 'a', {'square': moving_squares(num_frames=3, num_objects=1)})
  split = root / 'ImageSets' / '480p' / 'val.txt'
  split.write_text(split.read_text() + '/JPEGImages/480p/square/00009.jpg '
                   '/Annotations/480p/square/00009.png\n')
  with pytest.raises(InputError, match='00009.jpg: frame of sequence square not found'):
    DavisDataset(root, 'val').sequence('square')
  root = make_davis2016(tmp_path / 'b', {'square': moving_squares(num_frames=3, num_objects=1)})
  mask = root / 'Annotations' / '480p' / 'square' / '00001.png'
  Image.fromarray(np.zeros((44, 60), np.uint8)).save(mask)
  with pytest.raises(InputError, match='00001.png: mask size 60x44 differs from the frame size 60x40'):
    DavisDataset(root, 'val').sequence('square').read_annotation(1)


def test_davis_dataset_errors(tmp_path):
  with pytest.raises(InputError, match='DAVIS folder not found'):
    DavisDataset(tmp_path / 'none')
  with pytest.raises(InputError, match='split file not found'):
    DavisDataset(tmp_path)
  (tmp_path / 'ImageSets' / '2017').mkdir(parents=True)
  (tmp_path / 'ImageSets' / '2017' / 'val.txt').write_text('ghost\n')
  with pytest.raises(InputError, match='frame folder of sequence ghost not found'):
    DavisDataset(tmp_path)
  root = make_davis2017(tmp_path / 'empty_first', {'blank': np.zeros((3, 10, 10), np.uint8)})
  with pytest.raises(InputError, match='first-frame mask contains no object'):
    DavisDataset(root).sequence('blank').first_mask()


def test_shared_davis2016_is_read(shared_davis2016):
  dataset = DavisDataset(shared_davis2016, 'train')
  assert dataset.layout == '2016' and len(dataset) == 30
  sequence = dataset.sequence(dataset.sequence_names[0])
  assert sequence.frames.size == (480, 854)
  assert set(np.unique(sequence.read_annotation(0)).tolist()) == {0, 1}
