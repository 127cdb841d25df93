"""How synthetic instances move: trajectories pinned so that the planned hide, crossing and reappearance happen."""

import numpy as np

from vsreid_jax.data.synthetic_appearance import pose_sprite

# Frames in which the hidden object shows before its hidden span, and after it, at least.
MIN_VISIBLE = 4

# Pixels between a hidden object's outline and the edge that hides it: anti-aliasing and
# bilinear warping spread a drawn outline by up to two pixels.
_MARGIN = 3.0


def _extents(outline, angles, scales):
  """[T, 4] reach of the posed outline left, right, up and down of its centre."""
  cos, sin = (scales * np.cos(angles))[:, None], (scales * np.sin(angles))[:, None]
  x = cos * outline[:, 0] - sin * outline[:, 1]
  y = sin * outline[:, 0] + cos * outline[:, 1]
  return np.stack([-x.min(1), x.max(1), -y.min(1), y.max(1)], -1)


def _place_pillar(rng, width, spread, window, radius):
  """Left edge per frame and width of the full-height pillar that hides an object.

  The pillar is wide enough to hide the object (of horizontal `spread` per frame) with room to
  travel behind it, and leaves `radius` pixels of frame on either side in every frame.
  """
  first, last = window
  frames = np.arange(len(spread))
  middle = (first + last) / 2
  reach = np.abs(frames - middle).max()
  base = spread[first:last + 1].max() + 2 * _MARGIN
  drift = rng.uniform(-0.1, 0.1) * width / len(spread)
  slack = width - 1 - 2 * radius - base - 2 * abs(drift) * reach
  if slack < 0:
    drift, slack = 0.0, max(width - 1 - 2 * radius - base, 0.0)
  travel = min(rng.uniform(0.15, 0.3) * width, slack)
  left = radius + abs(drift) * reach + rng.uniform(0, slack - travel)
  return left + drift * (frames - middle), base + travel


def _pillar_pins(rng, height, extents, window, pillar, from_left, radius):
  """(frame, centre) pins that take an object behind the pillar and out at its other side."""
  first, last = window
  pillar_left, pillar_width = pillar
  left, right = extents[:, 0], extents[:, 1]
  sliver = np.maximum(4, 0.25 * (left + right))
  # Centres at which `sliver` pixels of the object show left or right of the pillar.
  show_left = pillar_left + left - sliver
  show_right = pillar_left + pillar_width - right + sliver
  low = pillar_left + left + _MARGIN
  high = pillar_left + pillar_width - right - _MARGIN
  frames = np.arange(first, last + 1)
  progress = (frames - first) / max(last - first, 1)
  if not from_left:
    progress = 1 - progress
    show_left, show_right = show_right, show_left
  xs = low[frames] + (high - low)[frames] * progress
  y_in, y_out = rng.uniform(radius, height - 1 - radius, 2)
  ys = y_in + (y_out - y_in) * (frames - first + 1) / (last - first + 2)
  return ([(first - 1, np.array([show_left[first - 1], y_in]))]
          + [(int(t), np.array([x, y])) for t, x, y in zip(frames, xs, ys)]
          + [(last + 1, np.array([show_right[last + 1], y_out]))])


def _edge_centre(edge, along, inside, extent, height, width):
  """Centre that leaves `inside` pixels of the object in the frame past `edge` (negative: out)."""
  left, right, up, down = extent
  return np.array({'left': (inside - 1 - right, along),
                   'right': (width - inside + left, along),
                   'top': (along, inside - 1 - down),
                   'bottom': (along, height - inside + up)}[edge])


def _exit_pins(rng, height, width, extents, window, radius, start):
  """(frame, centre) pins that take an object out of the frame and back in far from its exit.

  It leaves through the border nearest to its frame-0 centre `start`, so that it gets there at
  an ordinary speed.
  """
  first, last = window
  edges = ('left', 'right', 'top', 'bottom')

  def border_point(edge, along):
    return np.array({'left': (0, along), 'right': (width - 1, along),
                     'top': (along, 0), 'bottom': (along, height - 1)}[edge])

  def side(edge):
    return height if edge in ('left', 'right') else width

  def random_along(edge):
    return rng.uniform(radius, side(edge) - 1 - radius)

  x, y = start
  leave = edges[int(np.argmin([x, width - 1 - x, y, height - 1 - y]))]
  leave_at = float(np.clip(y if leave in ('left', 'right') else x, radius, side(leave) - 1 - radius))
  for _ in range(100):
    enter = edges[rng.integers(4)]
    enter_at = random_along(enter)
    gap = border_point(leave, leave_at) - border_point(enter, enter_at)
    if np.linalg.norm(gap) >= 0.5 * max(height, width):
      break
  else:
    enter = {'left': 'right', 'right': 'left', 'top': 'bottom', 'bottom': 'top'}[leave]
    enter_at = side(enter) - 1 - leave_at

  def pin(frame, edge, along, inside):
    return frame, _edge_centre(edge, along, inside, extents[frame], height, width)

  def sliver(frame, edge):
    left, right, up, down = extents[frame]
    return max(4.0, 0.25 * ((left + right) if edge in ('left', 'right') else (up + down)))

  middle = (first + last) / 2
  return ([pin(first - 1, leave, leave_at, sliver(first - 1, leave))]
          + [pin(t, leave, leave_at, -_MARGIN) if t < middle else pin(t, enter, enter_at, -_MARGIN)
             for t in range(first, last + 1)]
          + [pin(last + 1, enter, enter_at, sliver(last + 1, enter))])


def _start_positions(rng, radii, low, high, pillar_band):
  """Frame-0 centres, apart from each other and off the pillar where the frame has room."""
  placed = []
  for radius, lo, hi in zip(radii, low, high):
    best, best_score = None, -np.inf
    for _ in range(50):
      point = rng.uniform(lo, hi)
      scores = [np.linalg.norm(point - other) / (radius + other_radius)
                for other, other_radius in zip(placed, radii)]
      if pillar_band is not None:
        scores.append(max(pillar_band[0] - point[0], point[0] - pillar_band[1]) / radius)
      score = min(scores, default=np.inf)
      if score > best_score:
        best, best_score = point, score
      if score >= 1:
        break
    placed.append(best)
  return placed


def _overlap_offset(rng, front, back, front_pose, back_pose):
  """Offset of the front centre from the back one at which the front hides a quarter of the back."""
  size = int(np.ceil(2 * (front.radius + back.radius))) + 9
  middle = (size - 1) / 2
  back_mask = pose_sprite(back, (middle, middle), *back_pose, (0, 0), (size, size))[..., 3] >= 0.5
  heading = rng.uniform(0, 2 * np.pi)
  unit = np.array([np.cos(heading), np.sin(heading)])
  for distance in np.linspace(front.radius + back.radius, 0, 16):
    offset = distance * unit
    front_mask = pose_sprite(front, middle + offset, *front_pose, (0, 0), (size, size))[..., 3] >= 0.5
    if np.count_nonzero(front_mask & back_mask) >= 0.25 * np.count_nonzero(back_mask):
      break
  return offset


def _trajectory(rng, pins, low, high, max_step, num_frames):
  """[T, 2] centres through the (frame, centre) pins, wandering in [low, high] between and after.

  Keyframes 5-10 frames apart follow a random walk with momentum that keeps within reach of the
  next pin, so that speeds stay near `max_step` per frame; a pin too far away for that pace is
  approached at the even pace it needs.
  """
  last_frame = num_frames - 1
  frame, point = pins[0]
  times, points = [frame], [point]
  heading = rng.uniform(0, 2 * np.pi)
  for end, finish in pins[1:] + [(None, None)]:
    while True:
      step = int(rng.integers(5, 11))
      if (frame >= last_frame) if end is None else (frame + step > end - 3):
        break
      if end is not None:
        pace = max(0.8 * max_step, np.linalg.norm(point - finish) / (end - frame))
      frame += step
      heading += rng.normal(0, 0.6)
      direction = np.array([np.cos(heading), np.sin(heading)])
      goal = point + rng.uniform(0.4, 1.0) * max_step * step * direction
      if end is not None:
        reach, away = pace * (end - frame), goal - finish
        if np.linalg.norm(away) > reach:
          goal = finish + away * reach / np.linalg.norm(away)
      row = min(frame, last_frame)
      inside = np.clip(goal, low[row], high[row])
      # Turn back towards the middle of the allowed region instead of sliding along its edge.
      clipped = not np.allclose(inside, goal)
      towards = (low[row] + high[row]) / 2 - inside if clipped else inside - point
      heading = np.arctan2(towards[1], towards[0]) + rng.normal(0, 0.3)
      point = inside
      times.append(frame)
      points.append(point)
    if end is not None:
      frame, point = end, finish
      times.append(frame)
      points.append(point)
  points = np.array(points)
  frames = np.arange(num_frames)
  return np.stack([np.interp(frames, times, points[:, axis]) for axis in (0, 1)], -1)


def plan_centres(rng, config, sprites, angles, scales, target, depth_order, hide_by):
  """Centres [K, T, 2], the target's hidden window, and the pillar (left edges, width) or None.

  The target is fully hidden for a drawn number of frames and reappears elsewhere; the two
  instances of a pair of annotated objects are made to overlap partially at one frame.
  """
  num_frames, height, width = config.num_frames, config.height, config.width
  count = len(sprites)
  radii = np.array([sprite.radius for sprite in sprites])
  max_step = config.max_speed * min(height, width)
  length = int(rng.integers(config.hidden_frames[0], config.hidden_frames[1] + 1))
  before = max(MIN_VISIBLE, (num_frames - length) // 4)
  first = int(rng.integers(before, num_frames - length - before + 1))
  last = first + length - 1
  extents = _extents(sprites[target].outline, angles[target], scales[target])

  low = np.broadcast_to(0.6 * radii[:, None, None], (count, num_frames, 2)).copy()
  high = np.array([width - 1, height - 1], float) - low
  pillar = None
  if hide_by == 'occluder':
    radius = radii[target]
    pillar = _place_pillar(rng, width, extents[:, 0] + extents[:, 1], (first, last), radius)
    from_left = bool(rng.random() < 0.5)
    target_pins = _pillar_pins(rng, height, extents, (first, last), pillar, from_left, radius)
    left_of_pillar = pillar[0] - 0.3 * radius
    right_of_pillar = pillar[0] + pillar[1] + 0.3 * radius
    # The target stays on its side of the pillar before and after it goes behind it.
    if from_left:
      high[target, :first, 0] = left_of_pillar[:first]
      low[target, last + 1:, 0] = right_of_pillar[last + 1:]
    else:
      low[target, :first, 0] = right_of_pillar[:first]
      high[target, last + 1:, 0] = left_of_pillar[last + 1:]
  _collapse_empty(low, high)

  start_low, start_high = low[:, 0] + 0.4 * radii[:, None], high[:, 0] - 0.4 * radii[:, None]
  _collapse_empty(start_low, start_high)
  band = None if pillar is None else (pillar[0][0], pillar[0][0] + pillar[1])
  starts = _start_positions(rng, radii, start_low, start_high, band)
  if hide_by != 'occluder':
    target_pins = _exit_pins(rng, height, width, extents, (first, last), radii[target],
                             starts[target])
  pins = [[(0, start)] for start in starts]
  pins[target] += target_pins

  others = [k for k in range(config.num_objects) if k != target]
  if len(others) >= 2:
    pair = [int(k) for k in rng.choice(others, 2, replace=False)]
    frames = list(range(max(2, num_frames // 4), num_frames - 1))
  elif others:
    pair = [target, others[0]]
    frames = [t for t in range(2, num_frames - 1) if t < first - 3 or t > last + 3]
  else:
    frames = []
  if frames:
    front, back = sorted(pair, key=depth_order.index, reverse=True)
    frame = int(rng.choice(frames))
    band = None if pillar is None else (pillar[0][frame], pillar[0][frame] + pillar[1])
    _pin_crossing(rng, sprites, angles[:, frame], scales[:, frame], front, back, frame, pins,
                  low[:, frame], high[:, frame], band, max_step)
  centres = np.stack([
      _trajectory(rng, sorted(p, key=lambda pin: pin[0]), low[k], high[k], max_step, num_frames)
      for k, p in enumerate(pins)])
  return centres, (first, last + 1), pillar


def _collapse_empty(low, high):
  """Where a region is empty (low > high), shrinks it to the midpoint, in place."""
  empty = low > high
  middle = (low + high) / 2
  low[empty] = high[empty] = middle[empty]


def _pin_crossing(rng, sprites, angles, scales, front, back, frame, pins, low, high, band,
                  max_step):
  """Adds pins that make `front` partially cover `back` at `frame`, in view and off the pillar."""
  offset = _overlap_offset(rng, sprites[front], sprites[back], (angles[front], scales[front]),
                           (angles[back], scales[back]))

  def speed(k, point):
    previous_frame, previous = max((pin for pin in pins[k] if pin[0] < frame),
                                   key=lambda pin: pin[0])
    return np.linalg.norm(point - previous) / (frame - previous_frame)

  def cost(k, point):
    outside = np.maximum(low[k] - point, 0).sum() + np.maximum(point - high[k], 0).sum()
    hidden = 0.0
    if band is not None:
      radius = sprites[k].radius
      hidden = max(0.0, min(point[0] + radius, band[1]) - max(point[0] - radius, band[0]))
    return 100 * (outside + hidden) + max(0.0, speed(k, point) - max_step)

  best, best_cost = None, np.inf
  for _ in range(50):
    point = rng.uniform(low[front], high[front])
    total = cost(front, point) + cost(back, point - offset)
    if total < best_cost:
      best, best_cost = point, total
  pins[front].append((frame, best))
  pins[back].append((frame, best - offset))


def camera_path(rng, config):
  """[T, 2] non-negative (x, y) offset of the view into the background canvas, per frame."""
  frames = np.arange(config.num_frames)[:, None]
  pan = config.camera_pan * np.array([config.width * rng.choice([-1, 1]) * rng.uniform(0.3, 1.0),
                                      config.height * rng.uniform(-0.3, 0.3)])
  shake = rng.uniform(0, 1.5, 2) * np.sin(
      2 * np.pi * frames / rng.uniform(6, 14, 2) + rng.uniform(0, 2 * np.pi, 2))
  path = frames / max(config.num_frames - 1, 1) * pan + shake
  return path - path.min(0)
