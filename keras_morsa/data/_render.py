"""Procedural drawing of one ``morsa_parts`` photograph, with numpy and PIL only.

Private to :mod:`keras_morsa.data.morsa_parts`. A scene is one vise part lying on a bench, seen by a slightly
tilted camera:

1. the surface (wood, cutting mat, paper or concrete), with clutter lying on it in some scenes;
2. the part, described in its own units (longest side 1) by a signed distance (negative inside) and a height
   field. Every pixel is mapped back through the camera (tilt, keystone) and the pose (rotation, scale,
   position) into part coordinates, so edges are anti-aliased analytically at any resolution;
3. shading in linear light: normals from the height field, a key light with a direction and a colour
   temperature, an environment reflection for bare metal, paint or rust on some instances, the side walls the
   tilt reveals, a contact shadow and a soft cast shadow;
4. the camera: exposure, tone curve, vignetting, defocus blur, resampling to the output size, sensor noise.

Scenes are drawn at ``max(image_size, RENDER_MIN_SIZE)`` pixels (at most 4x supersampled) and resampled,
so a small output averages the detail the way a lens and sensor would. Surface details (threads, serrations,
knurls) fade out before they would alias. Scene draws come from one generator and size-dependent draws
(sensor noise) from a child of it, so a seed gives the same scene at every output size.
"""

import collections
import functools
import math

import numpy as np
from PIL import Image, ImageFilter

RENDER_MIN_SIZE = 192

_TAU = 2.0 * np.pi

Shape = collections.namedtuple("Shape", "evaluate half_width height")
Shape.__doc__ = """A part in its own units: ``evaluate(u, v, px) -> (sdf, height, cavity)`` on u in [-0.5, 0.5]
(the longest side) and |v| <= ``half_width``; ``px`` is the size of a pixel in those units; ``height`` is how far
the top face stands above the bench (it sets the side walls and the shadow)."""


# ------------------------------------------------------------------------------------------------ small maths
def _between(own, shared, alike):
    """Interpolates a class's own (low, high) range toward the range its look-alike classes share."""
    return tuple(o + alike * (s - o) for o, s in zip(own, shared))


def _smoothstep(e0, e1, x):
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _tri(x):
    """Triangle wave: 0 at integers, 1 at half-integers."""
    return 1.0 - np.abs(2.0 * (x - np.floor(x)) - 1.0)


def _fade(period, px):
    """Weight of a surface detail of this period: it fades out as it nears 2 pixels, before it would alias."""
    return float(np.clip(period / px / 2.0 - 1.0, 0.0, 1.0))


def _normalize(x, y, z):
    inv = 1.0 / np.sqrt(x * x + y * y + z * z)
    return x * inv, y * inv, z * inv


# ----------------------------------------------------------------------------------------- signed distances
def _sd_box(u, v, hu, hv, r=0.0):
    """Rectangle of half sizes (hu, hv) with corner radius r."""
    qu = np.abs(u) - hu + r
    qv = np.abs(v) - hv + r
    outside = np.hypot(np.maximum(qu, 0.0), np.maximum(qv, 0.0))
    return outside + np.minimum(np.maximum(qu, qv), 0.0) - r


def _sd_circle(u, v, r):
    return np.hypot(u, v) - r


def _sd_hex(u, v, inradius):
    """Regular hexagon with its flats at v = +-inradius."""
    x, y = np.abs(u), np.abs(v)
    kx, ky, kz = -0.8660254, 0.5, 0.57735027
    fold = 2.0 * np.minimum(kx * x + ky * y, 0.0)
    x = x - fold * kx
    y = y - fold * ky
    x = x - np.clip(x, -kz * inradius, kz * inradius)
    y = y - inradius
    return np.hypot(x, y) * np.sign(y)


def _bevel(sdf, top, chamfer):
    """Height of a flat-topped piece with a 45 degree chamfer; outside it holds the rim height (no false step)."""
    return top - chamfer + np.clip(-sdf, 0.0, chamfer)


def _rounded(sdf, top, radius):
    """Height of a flat-topped piece with a rounded edge of this radius."""
    t = np.clip(-sdf / radius, 0.0, 1.0)
    return top - radius + radius * np.sqrt(1.0 - (1.0 - t) ** 2)


def _rod(u, v, u0, u1, r, chamfer=0.0):
    """A cylinder lying along u from u0 to u1, radius r (scalar, or per pixel for threads), chamfered ends."""
    r = r - np.clip(chamfer - (u - u0), 0.0, chamfer) - np.clip(chamfer - (u1 - u), 0.0, chamfer)
    sdf = np.maximum(np.abs(v) - r, np.maximum(u0 - u, u - u1))
    return sdf, np.sqrt(np.maximum(r * r - v * v, 0.0))


def _ball(u, v, r):
    d2 = u * u + v * v
    return np.sqrt(d2) - r, np.sqrt(np.maximum(r * r - d2, 0.0))


def _stack(lower, upper):
    """Union of two (sdf, height) pieces with ``upper`` resting on ``lower``.

    Inside ``upper`` its height wins; outside both, the nearer piece's held height is kept, so the silhouette
    shows no false step.
    """
    s_lo, h_lo = lower
    s_up, h_up = upper
    pick_up = (s_up < 0.0) | ((s_lo >= 0.0) & (s_up <= s_lo))
    return np.minimum(s_lo, s_up), np.where(pick_up, h_up, h_lo)


def _thread(u, v, r, pitch, depth, px):
    """Radius and groove share of a thread seen from the side (crests slant half a pitch across the rod)."""
    k = _fade(pitch, px)
    groove = k * np.clip(1.6 * _tri(u / pitch + v / (4.0 * r)) - 0.3, 0.0, 1.0)
    return r - depth * groove, groove


def _knurl(u, v, r, pitch, depth, px):
    """Radius and groove share of a diamond knurl."""
    k = _fade(pitch, px)
    groove = k * 0.5 * (_tri((u + v) / pitch) + _tri((u - v) / pitch))
    return r - depth * groove, groove


def _serration(u, v, pitch, px, pyramids):
    """Jaw teeth in [0, 1] (1 at a tooth tip): pyramids, or grooves running along u."""
    k = _fade(pitch, px)
    if pyramids:
        teeth = 1.0 - np.maximum(_tri(u / pitch), _tri(v / pitch))
    else:
        teeth = 1.0 - _tri(v / pitch)
    return k * teeth + (1.0 - k) * 0.5


def _socket(u, v, r):
    """A hex socket (for a cap or countersunk screw head): cavity darkening in [0, 1]."""
    return _smoothstep(0.004, -0.004, _sd_hex(u, v, r))


def _countersink(h, sdf, u, v, r_hole, r_sink, through):
    """Cuts a countersunk hole: the height dips toward the bore; a through hole also cuts the outline."""
    d = np.hypot(u, v)
    h = h - np.clip(r_sink - d, 0.0, r_sink - r_hole)
    if through:
        sdf = np.maximum(sdf, r_hole - d)
    return sdf, h


# ------------------------------------------------------------------------------------------------- the parts
# Each builder draws an instance's proportions from ``rng`` and returns a Shape. ``alike`` in [0, 1] pulls the
# proportions of look-alike classes (jaw/jaw_plate; lead_screw/clamp_screw/pin; nut/washer) toward the range
# they share, so those classes differ by details rather than by gross proportions.


def _base(rng, alike):
    w = rng.uniform(0.36, 0.52)
    top, chamfer, corner = rng.uniform(0.1, 0.18), rng.uniform(0.008, 0.02), rng.uniform(0.01, 0.05)
    jaw_len, jaw_rise = rng.uniform(0.12, 0.2), rng.uniform(0.04, 0.09)
    pitch, pyramids = rng.uniform(0.018, 0.03), rng.random() < 0.5
    slot_hw, slot_start = w * rng.uniform(0.09, 0.16), rng.uniform(-0.42, -0.28)
    slot_end = 0.5 - jaw_len - rng.uniform(0.03, 0.08)
    slot_through = rng.random() < 0.4
    ear_r = rng.uniform(0.05, 0.08)
    ear_us = [rng.uniform(-0.38, -0.22), rng.uniform(0.12, 0.28)] if rng.random() < 0.5 else [rng.uniform(-0.2, 0.1)]
    hole_r = ear_r * rng.uniform(0.38, 0.55)
    swivel_r = w * rng.uniform(0.55, 0.7) if rng.random() < 0.35 else 0.0
    swivel_u = rng.uniform(-0.15, 0.05)

    def evaluate(u, v, px):
        body = _sd_box(u, v, 0.5, w / 2, corner)
        piece = (body, _bevel(body, top, chamfer))
        lugs = None
        for ear_u in ear_us:
            for side in (-1.0, 1.0):
                ear = _sd_circle(u - ear_u, v - side * w / 2, ear_r)
                lug = (ear, _bevel(ear, 0.35 * top, chamfer))
                lugs = lug if lugs is None else _stack(lugs, lug)
        if swivel_r:
            disc = _sd_circle(u - swivel_u, v, swivel_r)
            lugs = _stack((disc, _rounded(disc, 0.22 * top, 0.02)), lugs)
        sdf, h = _stack(lugs, piece)
        cavity = np.ones_like(h)
        jaw = _sd_box(u - (0.5 - jaw_len / 2), v, jaw_len / 2, w / 2, corner)
        h = np.where(jaw < 0.0, _bevel(jaw, top + jaw_rise, chamfer), h)
        face = _sd_box(u - (0.5 - jaw_len + 0.018), v, 0.018, w / 2 - chamfer)
        teeth = _serration(u, v, pitch, px, pyramids)
        h = np.where(face < 0.0, h + 0.4 * pitch * teeth, h)
        cavity = np.where(face < 0.0, 0.75 + 0.25 * teeth, cavity)
        slot = _sd_box(u - (slot_start + slot_end) / 2, v, (slot_end - slot_start) / 2, slot_hw, 0.9 * slot_hw)
        if slot_through:
            sdf = np.maximum(sdf, -slot)
        else:
            h = np.where(slot < 0.0, 0.45 * top, h)
            cavity = np.where(slot < 0.0, 0.55, cavity)
        for ear_u in ear_us:
            for side in (-1.0, 1.0):
                sdf, h = _countersink(h, sdf, u - ear_u, v - side * w / 2, hole_r, hole_r + chamfer, True)
        return sdf, h, cavity

    return Shape(evaluate, max(w / 2 + ear_r, swivel_r), top + jaw_rise)


def _jaw(rng, alike):
    a = rng.uniform(*_between((0.34, 0.6), (0.16, 0.6), alike))
    top = rng.uniform(*_between((0.12, 0.22), (0.025, 0.22), alike))
    chamfer, corner = rng.uniform(0.006, 0.018), rng.uniform(0.005, 0.03)
    face_w, rise = a * rng.uniform(0.3, 0.55), rng.uniform(0.0, 0.03)
    pitch, pyramids = rng.uniform(0.022, 0.04), rng.random() < 0.5
    tongue = rng.random() < 0.6
    tongue_hu, tongue_len = rng.uniform(0.08, 0.15), rng.uniform(0.06, 0.16)
    screws = rng.random() < 0.5
    screw_u, screw_r = rng.uniform(0.24, 0.36), rng.uniform(0.025, 0.04)

    def evaluate(u, v, px):
        block = _sd_box(u, v, 0.5, a / 2, corner)
        piece = (block, _bevel(block, top, chamfer))
        if tongue:
            guide = _sd_box(u, v + a / 2, tongue_hu, tongue_len, 0.01)
            piece = _stack((guide, _bevel(guide, 0.5 * top, chamfer)), piece)
        sdf, h = piece
        face_v = a / 2 - face_w / 2
        face = _sd_box(u, v - face_v, 0.5 - chamfer, face_w / 2 - chamfer)
        teeth = _serration(u, v, pitch, px, pyramids)
        h = np.where(face < 0.0, h + rise + 0.4 * pitch * teeth, h)
        cavity = np.where(face < 0.0, 0.75 + 0.25 * teeth, 1.0)
        if screws:
            for su in (-screw_u, screw_u):
                d = _sd_circle(u - su, v - face_v, screw_r)
                dome = top + rise + 0.5 * np.sqrt(np.maximum(screw_r**2 - (d + screw_r) ** 2, 0.0))
                h = np.where(d < 0.0, dome, h)
                cavity = np.where(d < 0.0, 1.0 - 0.8 * _socket(u - su, v - face_v, 0.45 * screw_r), cavity)
        return sdf, h, cavity

    return Shape(evaluate, a / 2 + (tongue_len if tongue else 0.0), top + rise)


def _jaw_plate(rng, alike):
    a = rng.uniform(*_between((0.16, 0.32), (0.16, 0.6), alike))
    top = rng.uniform(*_between((0.025, 0.06), (0.025, 0.22), alike))
    chamfer, corner = rng.uniform(0.004, 0.012), rng.uniform(0.003, 0.02)
    teeth_share = rng.uniform(0.55, 1.0)
    pitch, pyramids = rng.uniform(0.022, 0.04), rng.random() < 0.5
    hole_us = [-1.0, 1.0] if rng.random() < 0.75 else [-1.0, 0.0, 1.0]
    hole_u, hole_r = rng.uniform(0.22, 0.36), rng.uniform(0.022, 0.04)
    sink_r = hole_r * rng.uniform(1.6, 2.1)
    screwed = rng.random() < 0.35

    def evaluate(u, v, px):
        sdf = _sd_box(u, v, 0.5, a / 2, corner)
        h = _bevel(sdf, top, chamfer)
        teeth_v = a / 2 - teeth_share * a / 2
        face = _sd_box(u, v - teeth_v, 0.5 - chamfer, teeth_share * a / 2 - chamfer)
        teeth = _serration(u, v, pitch, px, pyramids)
        h = np.where(face < 0.0, h + 0.4 * pitch * teeth, h)
        cavity = np.where(face < 0.0, 0.75 + 0.25 * teeth, 1.0)
        for k in hole_us:
            hu = u - k * hole_u
            if screwed:
                head = _sd_circle(hu, v, sink_r)
                h = np.where(head < 0.0, top, h)
                cavity = np.where(head < 0.0, 1.0 - 0.8 * _socket(hu, v, 0.9 * hole_r), cavity)
            else:
                sdf, h = _countersink(h, sdf, hu, v, hole_r, sink_r, True)
        return sdf, h, cavity

    return Shape(evaluate, a / 2, top + 0.4 * pitch)


def _threaded_rod(u, v, px, segments):
    """Stacks rod segments ``(u0, u1, radius, chamfer, pattern)``; pattern is None, ("thread"|"knurl", pitch)."""
    piece, groove = None, np.zeros_like(u)
    for u0, u1, r, chamfer, pattern in segments:
        radius = r
        if pattern is not None:
            kind, pitch = pattern
            inside = (u >= u0) & (u <= u1)
            make = _thread if kind == "thread" else _knurl
            radius, g = make(u, v, r, pitch, 0.16 * r, px)
            groove = np.where(inside, g, groove)
        rod = _rod(u, v, u0, u1, radius, chamfer)
        piece = rod if piece is None else _stack(piece, rod)
    return piece, 1.0 - 0.45 * groove


def _cross_bar(u, v, u_c, r, half_len, ball_r):
    """A thin bar through a rod at u_c (a sliding handle), with balls at its ends when ball_r > 0."""
    piece = _rod(v, u - u_c, -half_len, half_len, r, 0.3 * r)
    if ball_r:
        for side in (-1.0, 1.0):
            piece = _stack(piece, _ball(u - u_c, v - side * (half_len - ball_r * 0.6), ball_r))
    return piece


def _lead_screw(rng, alike):
    r = rng.uniform(*_between((0.035, 0.06), (0.03, 0.075), alike))
    thread_share = rng.uniform(*_between((0.55, 0.85), (0.35, 0.85), alike))
    pitch = 2 * r * rng.uniform(0.3, 0.45)
    pilot = rng.uniform(0.02, 0.05)
    head_len, head_r = rng.uniform(0.07, 0.14), r * rng.uniform(0.8, 0.98)
    collar = rng.random() < 0.8
    collar_len, collar_r = rng.uniform(0.03, 0.06) if collar else 0.0, r * rng.uniform(1.3, 1.7)
    cross_hole = rng.random() < 0.6
    handle = rng.random() < 0.3
    bar_half, bar_r = rng.uniform(0.15, 0.25), r * rng.uniform(0.35, 0.45)
    bar_ball = bar_r * rng.uniform(1.6, 2.2) if rng.random() < 0.6 else 0.0
    shaft0, shaft1 = -0.5 + pilot, 0.5 - head_len - collar_len
    thread_end = shaft0 + thread_share * (shaft1 - shaft0)
    head_c = 0.5 - head_len / 2

    def evaluate(u, v, px):
        segments = [
            (-0.5, shaft0, 0.6 * r, 0.3 * r, None),
            (shaft0, thread_end, r, 0.15 * r, ("thread", pitch)),
            (thread_end, shaft1, 0.96 * r, 0.0, None),
            (0.5 - head_len, 0.5, head_r, 0.25 * r, None),
        ]
        if collar:
            segments.append((shaft1, shaft1 + collar_len, collar_r, 0.2 * r, None))
        (sdf, h), cavity = _threaded_rod(u, v, px, segments)
        if not cross_hole:  # a square end: flats catch the light as bands
            h = np.where(u > 0.5 - head_len, np.minimum(h, 0.75 * head_r), h)
        elif handle:
            sdf, h = _stack((sdf, h), _cross_bar(u, v, head_c, bar_r, bar_half, bar_ball))
        else:
            hole = _sd_circle(u - head_c, v, 0.5 * head_r)
            cavity = np.where(hole < 0.0, 0.25, cavity)
        return sdf, h, cavity

    half = max(collar_r, bar_half if handle and cross_hole else 0.0)
    return Shape(evaluate, half, r)


def _clamp_screw(rng, alike):
    r = rng.uniform(*_between((0.045, 0.075), (0.03, 0.075), alike))
    thread_share = rng.uniform(*_between((0.45, 0.75), (0.35, 0.85), alike))
    pitch = 2 * r * rng.uniform(0.3, 0.45)
    pad_r, pad_len = r * rng.uniform(1.8, 2.6), rng.uniform(0.04, 0.08)
    neck_len = rng.uniform(0.02, 0.04)
    end_kind = rng.choice(["bar", "knob", "head"], p=[0.55, 0.25, 0.2])
    end_len, knob_r = rng.uniform(0.07, 0.13), r * rng.uniform(1.5, 2.1)
    bar_half, bar_r = rng.uniform(0.15, 0.26), r * rng.uniform(0.35, 0.45)
    bar_ball = bar_r * rng.uniform(1.6, 2.2) if rng.random() < 0.5 else 0.0
    shaft0, shaft1 = -0.5 + pad_len + neck_len, 0.5 - end_len
    thread_end = shaft1 - thread_share * (shaft1 - shaft0)

    def evaluate(u, v, px):
        end_r = knob_r if end_kind == "knob" else 1.15 * r
        end_pattern = ("knurl", 0.6 * pitch) if end_kind == "knob" else None
        segments = [
            (-0.5, -0.5 + pad_len, pad_r, 0.3 * pad_len, None),
            (-0.5 + pad_len, shaft0, 0.6 * r, 0.0, None),
            (shaft0, thread_end, 0.96 * r, 0.0, None),
            (thread_end, shaft1, r, 0.15 * r, ("thread", pitch)),
            (shaft1, 0.5, end_r, 0.25 * r, end_pattern),
        ]
        (sdf, h), cavity = _threaded_rod(u, v, px, segments)
        if end_kind == "bar":
            sdf, h = _stack((sdf, h), _cross_bar(u, v, 0.5 - end_len / 2, bar_r, bar_half, bar_ball))
        return sdf, h, cavity

    half = max(pad_r, knob_r if end_kind == "knob" else 0.0, bar_half if end_kind == "bar" else 0.0)
    return Shape(evaluate, half, r)


def _pin(rng, alike):
    r = rng.uniform(*_between((0.03, 0.07), (0.03, 0.075), alike))
    chamfer = r * rng.uniform(0.15, 0.45)
    head = rng.random() < 0.35
    head_r, head_len = r * rng.uniform(1.35, 1.7), rng.uniform(0.03, 0.06)
    knurl = rng.random() < 0.15 + 0.5 * alike
    knurl0 = rng.uniform(-0.4, 0.0)
    knurl1 = knurl0 + rng.uniform(0.25, 0.45)
    pitch = 2 * r * rng.uniform(0.3, 0.45)
    step = rng.random() < 0.3
    step_u = rng.uniform(-0.1, 0.3)
    grooves = [rng.uniform(-0.45, 0.45) for _ in range(rng.integers(0, 3))]
    cross_hole = rng.random() < 0.35
    hole_u = rng.uniform(0.36, 0.44)

    def evaluate(u, v, px):
        u0 = -0.5 + (head_len if head else 0.0)
        segments = [(u0, step_u if step else 0.5, r, chamfer, None)]
        if step:
            segments.append((step_u, 0.5, 0.78 * r, chamfer, None))
        if knurl:
            segments.append((knurl0, knurl1, r * 1.02, 0.0, ("knurl", pitch)))
        if head:
            segments.append((-0.5, u0, head_r, 0.3 * head_len, None))
        (sdf, h), cavity = _threaded_rod(u, v, px, segments)
        for g in grooves:
            ring = np.abs(u - g) < 0.008
            h = np.where(ring, 0.85 * h, h)
            cavity = np.where(ring, 0.6 * cavity, cavity)
        if cross_hole:
            cavity = np.where(_sd_circle(u - hole_u, v, 0.45 * r) < 0.0, 0.25, cavity)
        return sdf, h, cavity

    return Shape(evaluate, head_r if head else r, r)


def _handle(rng, alike):
    r = rng.uniform(0.02, 0.032)
    ball_r = r * rng.uniform(1.7, 2.4)
    both = rng.random() < 0.65
    cap_len = rng.uniform(0.015, 0.03)

    def evaluate(u, v, px):
        piece = _rod(u, v, -0.5 + ball_r, 0.5 - (ball_r if both else cap_len), r, 0.0)
        piece = _stack(piece, _ball(u + 0.5 - ball_r, v, ball_r))
        if both:
            piece = _stack(piece, _ball(u - 0.5 + ball_r, v, ball_r))
        else:
            piece = _stack(piece, _rod(u, v, 0.5 - cap_len, 0.5, 1.35 * r, 0.4 * cap_len))
        return piece[0], piece[1], np.ones_like(u)

    return Shape(evaluate, ball_r, r)


def _clamp(rng, alike):
    gap, arm, spine = rng.uniform(0.22, 0.4), rng.uniform(0.08, 0.13), rng.uniform(0.1, 0.17)
    outer_r, inner_r = rng.uniform(0.03, 0.1), rng.uniform(0.01, 0.05)
    top, chamfer = rng.uniform(0.08, 0.14), rng.uniform(0.006, 0.015)
    ribbed, rim = rng.random() < 0.6, rng.uniform(0.018, 0.03)
    boss_r = arm * rng.uniform(0.75, 0.95)
    boss_side = 1.0 if rng.random() < 0.5 else -1.0
    hole = rng.random() < 0.6
    half = gap / 2 + arm

    def evaluate(u, v, px):
        outer = _sd_box(u, v, 0.5, half, outer_r)
        inner = _sd_box(u - (spine + 0.1) / 2, v, 0.5 - (spine - 0.1) / 2, gap / 2, inner_r)
        frame = np.maximum(outer, -inner)
        h = _bevel(frame, top, chamfer)
        cavity = np.ones_like(h)
        if ribbed:
            web = frame > -rim
            h = np.where(web, h, 0.6 * top)
            cavity = np.where(web, 1.0, 0.7)
        boss = _sd_circle(u - (0.5 - boss_r), v - boss_side * (gap / 2 + arm / 2), boss_r)
        sdf, h = _stack((frame, h), (boss, _rounded(boss, 1.2 * top, 0.3 * boss_r)))
        cavity = np.where(boss < 0.0, 1.0, cavity)
        if hole:
            sdf, h = _countersink(
                h, sdf, u - (0.5 - boss_r), v - boss_side * (gap / 2 + arm / 2), 0.45 * boss_r, 0.6 * boss_r, True
            )
        return sdf, h, cavity

    return Shape(evaluate, half, 1.2 * top)


def _nut(rng, alike):
    flange = rng.random() < 0.12 + 0.3 * alike
    inradius = 0.5 * 0.866 * (rng.uniform(0.7, 0.82) if flange else 1.0)
    top = rng.uniform(*_between((0.18, 0.4), (0.035, 0.4), alike))
    bore = inradius * rng.uniform(*_between((0.45, 0.62), (0.45, 0.7), alike))
    corner = inradius / 0.866 * rng.uniform(0.9, 0.97)
    sink, chamfer = bore * rng.uniform(0.08, 0.2), rng.uniform(0.008, 0.02)
    flange_top = rng.uniform(0.03, 0.07)
    rings = rng.random() < 0.5

    def evaluate(u, v, px):
        hexagon = _sd_hex(u, v, inradius)
        d = np.hypot(u, v)
        h = _bevel(hexagon, top, chamfer) - 0.6 * np.maximum(d - corner, 0.0)
        sdf = hexagon
        if flange:
            disc = d - 0.5
            sdf, h = _stack((disc, _rounded(disc, flange_top, 0.015)), (hexagon, h))
        sdf, h = _countersink(h, sdf, u, v, bore, bore + sink, True)
        cavity = np.ones_like(h)
        if rings:  # turning marks on the face
            k = _fade(0.02, px)
            cavity = 1.0 - 0.08 * k * _tri(d / 0.02)
        return sdf, h, cavity

    return Shape(evaluate, 0.5, top)


def _washer(rng, alike):
    inner = rng.uniform(*_between((0.2, 0.3), (0.18, 0.33), alike))
    top = rng.uniform(*_between((0.03, 0.09), (0.03, 0.4), alike))
    kind = rng.choice(["plain", "split", "toothed"], p=[0.55, 0.2, 0.25])
    kind = "toothed" if kind == "plain" and rng.random() < 0.4 * alike else kind
    teeth, tooth_depth = int(rng.integers(6, 13)), rng.uniform(0.04, 0.08)
    gap, roundness = rng.uniform(0.02, 0.05), min(0.02, top / 2)

    def evaluate(u, v, px):
        d = np.hypot(u, v)
        outer = 0.5
        if kind == "toothed":
            angle = np.arctan2(v, u)
            outer = 0.5 - tooth_depth * np.clip(2.2 * _tri(angle * teeth / _TAU) - 0.6, 0.0, 1.0)
        sdf = np.maximum(d - outer, inner - d)
        h = _rounded(sdf, top, roundness)
        if kind == "split":
            cut = np.maximum(np.abs(v) - gap / 2, -u)
            sdf = np.maximum(sdf, -cut)
            h = h + 0.25 * top * (np.arctan2(v, u) / _TAU + 0.5)
        k = _fade(0.015, px)
        cavity = 1.0 - 0.06 * k * _tri(d / 0.015)
        return sdf, h, cavity

    return Shape(evaluate, 0.5, top * (1.25 if kind == "split" else 1.0))


PART_BUILDERS = {
    "base": _base,
    "jaw": _jaw,
    "jaw_plate": _jaw_plate,
    "lead_screw": _lead_screw,
    "handle": _handle,
    "clamp": _clamp,
    "clamp_screw": _clamp_screw,
    "nut": _nut,
    "washer": _washer,
    "pin": _pin,
}


# ------------------------------------------------------------------------------------------------- clutter
def _pencil(rng):
    r, tip = rng.uniform(0.02, 0.03), rng.uniform(0.06, 0.1)

    def evaluate(u, v, px):
        radius = r * np.clip((0.5 - u) / tip, 0.0, 1.0)
        sdf, h = _rod(u, v, -0.5, 0.5, radius, 0.0)
        return sdf, np.minimum(h, 0.87 * r), np.where(u > 0.5 - tip, 0.8, 1.0)

    return Shape(evaluate, r, r)


def _block(rng, widths, corner, top):
    """A flat rounded block lying on the bench: an eraser (thick) or a strip of tape (thin)."""
    hv = rng.uniform(*widths)

    def evaluate(u, v, px):
        sdf = _sd_box(u, v, 0.5, hv, corner)
        return sdf, _rounded(sdf, top, min(corner, top / 2)), np.ones_like(u)

    return Shape(evaluate, hv, top)


def _coin(rng):
    def evaluate(u, v, px):
        d = np.hypot(u, v)
        sdf = d - 0.5
        rim = np.clip(1.0 - np.abs(d - 0.46) / 0.03, 0.0, 1.0)
        return sdf, _rounded(sdf, 0.05, 0.02) + 0.01 * rim, np.ones_like(u)

    return Shape(evaluate, 0.5, 0.05)


def _shaving(rng):
    radius, width = rng.uniform(0.25, 0.45), rng.uniform(0.015, 0.03)
    span = rng.uniform(0.5, 0.95) * _TAU

    def evaluate(u, v, px):
        angle = np.mod(np.arctan2(v, u), _TAU)
        ring = np.abs(np.hypot(u, v) - radius * (0.7 + 0.3 * angle / _TAU)) - width
        sdf = np.where(angle < span, ring, 1.0)
        return sdf, np.clip(-sdf, 0.0, width), np.ones_like(u)

    return Shape(evaluate, 0.5, width)


_ERASER = functools.partial(_block, widths=(0.2, 0.4), corner=0.06, top=0.18)
_TAPE = functools.partial(_block, widths=(0.08, 0.2), corner=0.004, top=0.004)
# Each clutter item and its length as a fraction of the frame.
_CLUTTER = (
    (_pencil, (0.5, 0.95)),
    (_ERASER, (0.12, 0.25)),
    (_coin, (0.08, 0.16)),
    (_shaving, (0.1, 0.25)),
    (_TAPE, (0.25, 0.6)),
)


# ---------------------------------------------------------------------------------- noise, blur and shifts
def _upsample(grid, size):
    """Smooth noise: a small random grid resized (bicubic) to ``size`` x ``size``."""
    return _resize(grid, size, size, Image.BICUBIC)


def _fractal(rng, size, cells, octaves=3, persistence=0.5):
    """Sum of octaves of smooth noise, about zero mean and unit spread."""
    total, weight = np.zeros((size, size), np.float32), 0.0
    for octave in range(octaves):
        n = int(cells * 2**octave)
        total += persistence**octave * _upsample(rng.standard_normal((n, n), np.float32), size)
        weight += persistence**octave
    return total / weight


def _oriented(rng, size, cells_along, cells_across, angle):
    """Smooth noise stretched along the direction ``angle`` (radians): a rectangular grid, resized and turned."""
    side = int(np.ceil(size * 1.42)) + 2
    grid = rng.standard_normal((cells_across, cells_along), np.float32)
    field = Image.fromarray(grid, mode="F").resize((side, side), Image.BICUBIC)
    field = field.rotate(-math.degrees(angle), resample=Image.BILINEAR)
    offset = (side - size) // 2
    return np.asarray(field)[offset : offset + size, offset : offset + size]


def _lines(values, coord):
    """Periodic 1-D noise ``values`` looked up (linearly) at ``coord``: streaks running across ``coord``."""
    return np.interp(coord, np.arange(len(values)), values, period=len(values)).astype(np.float32)


def _sample(grid, x, y):
    """Bilinear lookup of a periodic grid at real coordinates (grid cells)."""
    n0, n1 = grid.shape
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    fx, fy = fx * fx * (3.0 - 2.0 * fx), fy * fy * (3.0 - 2.0 * fy)  # smooth weights: no creases
    i0, j0 = y0.astype(np.int64) % n0, x0.astype(np.int64) % n1
    i1, j1 = (i0 + 1) % n0, (j0 + 1) % n1
    top = grid[i0, j0] * (1 - fx) + grid[i0, j1] * fx
    bottom = grid[i1, j0] * (1 - fx) + grid[i1, j1] * fx
    return top * (1 - fy) + bottom * fy


def _box(a, radius, axis):
    pad = [(0, 0)] * a.ndim
    pad[axis] = (radius + 1, radius)
    c = np.cumsum(np.pad(a, pad, mode="edge"), axis=axis)
    n, width = a.shape[axis], 2 * radius + 1
    upper = [slice(None)] * a.ndim
    lower = [slice(None)] * a.ndim
    upper[axis], lower[axis] = slice(width, width + n), slice(0, n)
    return (c[tuple(upper)] - c[tuple(lower)]) / width


def _resize(a, width, height, resample):
    """Resizes an [H, W] or [H, W, C] float32 array, channel by channel."""
    if a.ndim == 3:
        return np.stack([_resize(a[..., c], width, height, resample) for c in range(a.shape[2])], axis=-1)
    image = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32), mode="F")
    return np.asarray(image.resize((width, height), resample))


def _blur(a, sigma):
    """Gaussian-like blur of an [H, W] or [H, W, C] float32 array: three box passes per axis.

    Wide blurs run on a downsampled copy (their result is smooth, so upsampling it back loses nothing visible).
    """
    if sigma < 0.5:
        return a
    factor = max(int(sigma), 1)
    h, w = a.shape[:2]
    small = a if factor == 1 else _resize(a, -(-w // factor), -(-h // factor), Image.BOX)
    radius = max(int(round((np.sqrt(4.0 * (sigma / factor) ** 2 + 1.0) - 1.0) / 2.0)), 1)
    for axis in (0, 1):
        for _ in range(3):
            small = _box(small, radius, axis)
    return small if factor == 1 else _resize(small, w, h, Image.BILINEAR)


def _shift(a, dx, dy):
    """Shifts an array by whole pixels (x right, y down), filling with zeros."""
    out = np.zeros_like(a)
    h, w = a.shape[:2]
    if abs(dx) >= w or abs(dy) >= h:
        return out
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = a[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


# ------------------------------------------------------------------------------------------- light, colour
# Blackbody colours (sRGB, 0..255) of common lamps and daylight, interpolated by temperature.
_KELVIN = np.array([2000, 2700, 3000, 3500, 4000, 5000, 6000, 6500, 7000, 8000], np.float32)
_KELVIN_RGB = np.array(
    [
        (255, 137, 18),
        (255, 169, 87),
        (255, 180, 107),
        (255, 196, 137),
        (255, 209, 163),
        (255, 228, 206),
        (255, 243, 239),
        (255, 249, 253),
        (245, 243, 255),
        (227, 233, 255),
    ],
    np.float32,
)


def _kelvin(temperature):
    rgb = np.array([np.interp(temperature, _KELVIN, _KELVIN_RGB[:, c]) for c in range(3)]) / 255.0
    rgb = rgb**2.2
    return rgb / (rgb @ np.array([0.2126, 0.7152, 0.0722]))


Light = collections.namedtuple("Light", "direction colour ambient ambient_colour")


def _light(rng, knobs):
    azimuth = rng.uniform(0.0, _TAU)
    elevation = math.radians(rng.uniform(*knobs.light_elevation_deg))
    temperature = rng.uniform(*knobs.colour_temperature)
    # The camera's white balance removes only part of the cast, as it does in real photographs.
    balanced = temperature + rng.uniform(0.3, 0.9) * (5500.0 - temperature)
    colour = _kelvin(temperature) / _kelvin(balanced)
    ambient_colour = _kelvin(rng.uniform(4500.0, 9000.0)) / _kelvin(balanced)
    direction = (math.cos(azimuth) * math.cos(elevation), math.sin(azimuth) * math.cos(elevation), math.sin(elevation))
    return Light(direction, colour.astype(np.float32), rng.uniform(0.25, 0.55), ambient_colour.astype(np.float32))


# ------------------------------------------------------------------------------------------------ materials
_PAINTS = np.array(
    [
        (0.03, 0.09, 0.3),
        (0.25, 0.25, 0.26),
        (0.05, 0.16, 0.06),
        (0.4, 0.03, 0.02),
        (0.6, 0.16, 0.01),
        (0.02, 0.02, 0.02),
        (0.45, 0.32, 0.02),
        (0.08, 0.2, 0.22),
    ],
    np.float32,
)
_METALS = (  # tint, shininess, relative chance
    ((0.62, 0.63, 0.65), 60.0, 3.0),  # machined or zinc-plated steel
    ((0.42, 0.43, 0.45), 25.0, 2.0),  # plain cast iron / ground steel
    ((0.09, 0.09, 0.1), 35.0, 1.5),  # black oxide
    ((0.72, 0.52, 0.22), 50.0, 0.7),  # brass
    ((0.78, 0.79, 0.8), 120.0, 1.0),  # chrome
)

Material = collections.namedtuple("Material", "tint shininess paint chips rust brushed grids")


def _material(rng, knobs, paint=None):
    weights = np.array([m[2] for m in _METALS])
    tint, shininess, _ = _METALS[rng.choice(len(_METALS), p=weights / weights.sum())]
    if paint is None and rng.random() < knobs.paint_prob:
        paint = _PAINTS[rng.integers(len(_PAINTS))] * rng.uniform(0.7, 1.3)
    chips = rng.uniform(0.0, 0.5) if paint is not None else 0.0
    rust = rng.uniform(0.2, 0.7) if rng.random() < knobs.rust_prob else 0.0
    grids = {
        "rust": rng.standard_normal((12, 12), np.float32),
        "fine": rng.standard_normal((48, 48), np.float32),
        "streaks": rng.standard_normal(512, np.float32),
    }
    return Material(
        np.array(tint, np.float32) * rng.uniform(0.85, 1.15),
        shininess * rng.uniform(0.6, 1.4),
        paint,
        chips,
        rust,
        rng.uniform(0.0, 0.35),
        grids,
    )


Texture = collections.namedtuple("Texture", "streaks fine blotch")


def _texture(material, u, v):
    """Surface textures at part coordinates (u, v); the fine ones only where paint or rust needs them."""
    grids = material.grids
    streaks = _lines(grids["streaks"], v * 180.0)
    if material.paint is None and not material.rust:
        return Texture(streaks, None, None)
    fine = _sample(grids["fine"], u * 40.0, v * 40.0)
    return Texture(streaks, fine, _sample(grids["rust"], u * 5.0, v * 5.0) + 0.35 * fine)


def _shade(nx, ny, nz, view, light, material, texture, cavity):
    """Linear RGB ``[N, 3]`` of N surface points with these normals (each ``[N]``)."""
    lx, ly, lz = light.direction
    vx, vy, vz = view
    ndl = np.clip(nx * lx + ny * ly + nz * lz, 0.0, 1.0)[..., None]
    hx, hy, hz = _normalize(lx + vx, ly + vy, lz + vz)
    ndh = np.clip(nx * hx + ny * hy + nz * hz, 0.0, 1.0)[..., None]
    ndv = nx * vx + ny * vy + nz * vz
    rz = 2.0 * ndv * nz - vz
    rl = np.clip((2.0 * ndv * nx - vx) * lx + (2.0 * ndv * ny - vy) * ly + rz * lz, 0.0, 1.0)[..., None]
    sky = np.clip(0.15 + 0.85 * rz, 0.03, 1.0)[..., None]
    soft = max(material.shininess / 12.0, 2.0)
    gloss = np.maximum(1.0 + material.brushed * texture.streaks, 0.3)[..., None]
    metal = material.tint * (
        light.ambient_colour * sky * 0.9 * gloss + light.colour * rl**soft * 1.2 + 0.25 * ndl * light.colour
    )
    metal = metal + light.colour * (ndh**material.shininess * 2.5 * gloss)
    colour = metal
    if material.paint is not None:
        hammer = 1.0 + 0.08 * texture.fine[..., None]
        painted = material.paint * hammer * (light.ambient * light.ambient_colour + ndl * light.colour)
        painted = painted + light.colour * 0.12 * ndh**18.0
        chipped = (texture.blotch > 2.2 - 2.0 * material.chips)[..., None]
        colour = np.where(chipped, metal, painted)
    if material.rust:
        rusty = _smoothstep(1.2 - 1.6 * material.rust, 1.6 - 1.6 * material.rust, texture.blotch)[..., None]
        rust_albedo = np.array((0.22, 0.07, 0.02), np.float32) * (1.0 + 0.3 * texture.fine[..., None])
        rust = rust_albedo * (light.ambient * light.ambient_colour + ndl * light.colour)
        colour = colour * (1.0 - rusty) + rust * rusty
    return colour * cavity[..., None]


# ---------------------------------------------------------------------------------------------- backgrounds
def _wood(rng, size, x, y):
    angle = rng.uniform(0.0, np.pi)
    across = -math.sin(angle) * x + math.cos(angle) * y
    along = math.cos(angle) * x + math.sin(angle) * y
    # The grain meanders slowly along the board and faster across it, so growth lines stay long and thin.
    warp = rng.uniform(0.01, 0.035) * (_oriented(rng, size, 2, 8, angle) + 0.3 * _oriented(rng, size, 3, 36, angle))
    arc = rng.uniform(-0.15, 0.15) * (along - rng.uniform(-0.5, 0.5)) ** 2  # flat-sawn "cathedral" arcs
    band = _tri(rng.uniform(12.0, 35.0) * (across + warp + arc))
    latewood = _smoothstep(0.55, 0.97, band)
    fibre = _lines(rng.standard_normal(2048, np.float32), (across + warp) * 1500.0)
    blotch = _oriented(rng, size, 3, 5, angle)
    tone = rng.uniform()
    light, dark = np.array((0.55, 0.33, 0.14)), np.array((0.13, 0.06, 0.025))
    base = (dark + tone * (light - dark)).astype(np.float32)
    texture = 1.0 - rng.uniform(0.2, 0.45) * latewood + 0.05 * fibre + 0.07 * blotch
    albedo = base * texture[..., None]
    for _ in range(rng.integers(0, 3)):  # seams between planks
        seam = np.abs(across - rng.uniform(-0.6, 0.6))
        albedo = albedo * (1.0 - 0.7 * _smoothstep(0.004, 0.0, seam))[..., None]
    return albedo


def _mat(rng, size, x, y):
    colours = np.array(
        [
            (0.03, 0.14, 0.06),
            (0.05, 0.05, 0.055),
            (0.02, 0.06, 0.18),
            (0.015, 0.015, 0.015),
            (0.3, 0.2, 0.09),
            (0.12, 0.12, 0.1),
        ],
        np.float32,
    )
    base = colours[rng.integers(len(colours))] * rng.uniform(0.8, 1.2)
    angle, spacing = rng.uniform(0.0, np.pi / 2), rng.uniform(0.05, 0.12)
    p = math.cos(angle) * x + math.sin(angle) * y + rng.uniform()
    q = -math.sin(angle) * x + math.cos(angle) * y + rng.uniform()
    ink = np.zeros_like(x)
    for coord in (p, q):
        cell = coord / spacing
        dist = np.abs(cell - np.round(cell)) * spacing
        major = np.where(np.round(cell) % 5 == 0, np.float32(0.003), np.float32(0.0))
        ink = np.maximum(ink, _smoothstep(0.0035 + major, 0.0015 + major, dist))
    line = np.array((0.45, 0.45, 0.35), np.float32) * rng.uniform(0.6, 1.2)
    texture = 1.0 + 0.06 * _fractal(rng, size, 24, 2)
    albedo = base * texture[..., None] * (1.0 - ink[..., None]) + line * ink[..., None]
    for _ in range(rng.integers(0, 6)):  # old knife cuts, drawn inside their own bounding box
        a, b = rng.uniform(0, 1, 2).astype(np.float32), rng.uniform(0, 1, 2).astype(np.float32)
        r0, r1 = int(min(a[1], b[1]) * size) - 2, int(max(a[1], b[1]) * size) + 3
        c0, c1 = int(min(a[0], b[0]) * size) - 2, int(max(a[0], b[0]) * size) + 3
        r0, c0 = max(r0, 0), max(c0, 0)
        xs, ys = x[r0:r1, c0:c1], y[r0:r1, c0:c1]
        t = np.clip(((xs - a[0]) * (b[0] - a[0]) + (ys - a[1]) * (b[1] - a[1])) / np.sum((b - a) ** 2), 0, 1)
        d = np.hypot(xs - a[0] - t * (b[0] - a[0]), ys - a[1] - t * (b[1] - a[1]))
        albedo[r0:r1, c0:c1] *= (1.0 + 0.6 * _smoothstep(0.002, 0.0, d))[..., None]
    return albedo


def _paper(rng, size, x, y):
    colours = np.array([(0.8, 0.8, 0.78), (0.75, 0.68, 0.5), (0.42, 0.27, 0.13), (0.6, 0.6, 0.57)], np.float32)
    base = colours[rng.integers(len(colours))] * rng.uniform(0.85, 1.05)
    fibres = 1.0 + 0.03 * _fractal(rng, size, 64, 2) + 0.03 * _fractal(rng, size, 6, 2)
    albedo = base * fibres[..., None]
    rule = rng.random()
    if rule < 0.4:  # ruled or squared paper
        spacing, ink = rng.uniform(0.04, 0.08), np.array((0.2, 0.3, 0.6), np.float32)
        dist = np.abs(y / spacing - np.round(y / spacing)) * spacing
        lines = _smoothstep(0.003, 0.001, dist)
        if rule < 0.15:
            dist = np.abs(x / spacing - np.round(x / spacing)) * spacing
            lines = np.maximum(lines, _smoothstep(0.003, 0.001, dist))
        albedo = albedo * (1 - 0.6 * lines[..., None]) + 0.6 * ink * lines[..., None] * base
    angle, offset = rng.uniform(0.0, _TAU), rng.uniform(-0.3, 0.3)
    side = math.cos(angle) * (x - 0.5) + math.sin(angle) * (y - 0.5) - offset
    albedo = albedo * (1.0 + rng.uniform(-0.08, 0.08) * _smoothstep(-0.01, 0.01, side))[..., None]
    if rng.random() < 0.4:  # the sheet lies on another surface and ends inside the frame
        under = (_wood if rng.random() < 0.5 else _mat)(rng, size, x, y)
        edge = math.cos(angle) * (x - 0.5) + math.sin(angle) * (y - 0.5) - rng.uniform(0.25, 0.45)
        cover = _smoothstep(0.002, -0.002, edge)[..., None]
        albedo = albedo * cover + under * (1.0 - cover) * (1.0 - 0.4 * _smoothstep(0.03, 0.0, edge))[..., None]
    return albedo


def _concrete(rng, size, x, y):
    tint = rng.uniform(0.9, 1.1, 3).astype(np.float32)
    base = rng.uniform(0.12, 0.3) * np.array((1.0, 0.98, 0.95), np.float32) * tint
    if rng.random() < 0.5:  # concrete: speckles and stains
        speckle = _fractal(rng, size, 96, 1)
        texture = 1.0 + 0.12 * _fractal(rng, size, 4, 3) + 0.15 * np.clip(speckle - 1.0, -1, 1)
    else:  # a steel bench top: brushed in one direction
        angle = rng.uniform(0.0, np.pi)
        across = -math.sin(angle) * x + math.cos(angle) * y
        streaks = _lines(rng.standard_normal(2048, np.float32), across * 2000.0)
        texture = 1.0 + 0.05 * streaks + 0.1 * _fractal(rng, size, 3, 2)
    return base * texture.astype(np.float32)[..., None]


BACKGROUNDS = {"wood": _wood, "mat": _mat, "paper": _paper, "concrete": _concrete}


# ---------------------------------------------------------------------------------------------- the camera
class _Camera:
    """Maps the bench plane (pixels) to the image: tilt (foreshortening along a random direction) and keystone."""

    def __init__(self, rng, size, knobs):
        self.size = size
        self.center = size / 2.0
        self.psi = rng.uniform(0.0, _TAU)
        tilt = math.radians(rng.uniform(0.0, knobs.max_tilt_deg))
        self.cos_tilt, self.sin_tilt = math.cos(tilt), math.sin(tilt)
        self.gx, self.gy = (rng.uniform(-knobs.max_perspective, knobs.max_perspective) / size for _ in range(2))
        # Heights rise toward the far side of the tilted view: (0, -1) in view coordinates, turned by psi.
        self.up = (math.sin(self.psi), -math.cos(self.psi))

    def to_bench(self, ix, iy):
        c, s = math.cos(self.psi), math.sin(self.psi)
        a0, b0 = ix - self.center, iy - self.center
        a, b = c * a0 + s * b0, -s * a0 + c * b0
        w = 1.0 / (1.0 - self.gx * a - self.gy * b / self.cos_tilt)
        x, y = a * w, b * w / self.cos_tilt
        return self.center + c * x - s * y, self.center + s * x + c * y

    def to_image(self, bx, by):
        c, s = math.cos(self.psi), math.sin(self.psi)
        x0, y0 = bx - self.center, by - self.center
        x, y = c * x0 + s * y0, -s * x0 + c * y0
        w = 1.0 + self.gx * x + self.gy * y
        a, b = x / w, self.cos_tilt * y / w
        return self.center + c * a - s * b, self.center + s * a + c * b


Pose = collections.namedtuple("Pose", "cx cy theta scale")


def _outline(shape, pose, camera):
    """Image-space bounding box (x0, y0, x1, y1) of the part, its lifted top face included."""
    hw = shape.half_width
    u = np.array([-0.5, 0.5, 0.5, -0.5])
    v = np.array([-hw, -hw, hw, hw])
    c, s = math.cos(pose.theta), math.sin(pose.theta)
    ix, iy = camera.to_image(pose.cx + pose.scale * (c * u - s * v), pose.cy + pose.scale * (s * u + c * v))
    lift = shape.height * pose.scale * camera.sin_tilt
    xs = np.concatenate([ix, ix + camera.up[0] * lift])
    ys = np.concatenate([iy, iy + camera.up[1] * lift])
    return xs.min(), ys.min(), xs.max(), ys.max()


def _place_part(rng, shape, camera, knobs):
    """A pose that keeps the whole part inside the frame, size and position drawn independently of the class."""
    size = camera.size
    margin = 0.03 * size
    cx, cy = (size * (0.5 + rng.uniform(-0.3, 0.3)) for _ in range(2))
    # Lying along the frame's width give or take max_rotation_deg, either end first.
    theta = math.radians(rng.uniform(-knobs.max_rotation_deg, knobs.max_rotation_deg)) + np.pi * (rng.random() < 0.5)
    pose = Pose(cx, cy, theta, rng.uniform(*knobs.part_scale) * size)
    for _ in range(8):
        x0, y0, x1, y1 = _outline(shape, pose, camera)
        room = size - 2 * margin
        if x1 - x0 > room or y1 - y0 > room:
            pose = pose._replace(scale=pose.scale * 0.97 * room / max(x1 - x0, y1 - y0))
            continue
        dx = max(margin - x0, 0.0) - max(x1 - (size - margin), 0.0)
        dy = max(margin - y0, 0.0) - max(y1 - (size - margin), 0.0)
        if abs(dx) < 0.5 and abs(dy) < 0.5:
            break
        pose = pose._replace(cx=pose.cx + dx, cy=pose.cy + dy)
    return pose


# ---------------------------------------------------------------------------------------------- drawing
Layer = collections.namedtuple("Layer", "box premultiplied alpha height_px")


def _draw(shape, material, pose, camera, light, view):
    """Draws one object: its premultiplied colour and coverage inside its bounding box (None if off frame)."""
    size = camera.size
    x0, y0, x1, y1 = _outline(shape, pose, camera)
    x0, y0 = max(int(np.floor(x0)) - 2, 0), max(int(np.floor(y0)) - 2, 0)
    x1, y1 = min(int(np.ceil(x1)) + 2, size), min(int(np.ceil(y1)) + 2, size)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    iy, ix = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
    lift = shape.height * pose.scale * camera.sin_tilt
    bx, by = camera.to_bench(ix - camera.up[0] * lift, iy - camera.up[1] * lift)
    c, s = math.cos(pose.theta), math.sin(pose.theta)
    dx, dy = (bx - pose.cx) / pose.scale, (by - pose.cy) / pose.scale
    u, v = (c * dx + s * dy).astype(np.float32), (-s * dx + c * dy).astype(np.float32)
    sdf, h, cavity = shape.evaluate(u, v, 1.0 / pose.scale)
    top = np.clip(0.5 - sdf * pose.scale, 0.0, 1.0).astype(np.float32)
    gy, gx = np.gradient(h.astype(np.float32))
    side, depth = np.zeros_like(top), np.zeros_like(top)
    steps = int(round(lift))
    # Side walls: the top face swept down to the bench; darker toward the bench (ambient occlusion).
    for k in range(1, steps + 1):
        moved = _shift(top, int(round(-camera.up[0] * k)), int(round(-camera.up[1] * k)))
        depth = np.where((moved > 0.5) & (side <= 0.5), k / steps, depth)
        side = np.maximum(side, moved)
    reveal = side * (1.0 - top)
    # Shade only the pixels the object covers: a diagonal screw fills a few percent of its box.
    covered = (top > 0.0) | (reveal > 0.0)
    window_view = tuple(a[y0:y1, x0:x1][covered] for a in view)
    texture = _texture(material, u[covered], v[covered])
    nx, ny, nz = _normalize(-gx[covered] * pose.scale, -gy[covered] * pose.scale, np.ones_like(texture.streaks))
    colour = _shade(nx, ny, nz, window_view, light, material, texture, cavity[covered]) * top[covered][:, None]
    if steps:
        ones = np.ones_like(nx)
        wall_normal = _normalize(-camera.up[0] * ones, -camera.up[1] * ones, 0.35 * ones)
        wall = _shade(*wall_normal, window_view, light, material, texture, 1.0 - 0.55 * depth[covered])
        colour += wall * reveal[covered][:, None]
    premultiplied = np.zeros(top.shape + (3,), np.float32)
    premultiplied[covered] = colour
    return Layer((x0, y0, x1, y1), premultiplied, top + reveal, shape.height * pose.scale)


def _full(layer, size):
    frame = np.zeros((size, size), np.float32)
    x0, y0, x1, y1 = layer.box
    frame[y0:y1, x0:x1] = layer.alpha
    return frame


def _cast_shadow(canvas, layer, light, strength):
    """Darkens the canvas under and beside an object: a contact shadow and a soft shadow away from the light."""
    size = canvas.shape[0]
    lx, ly, lz = light.direction
    reach = 0.6 * layer.height_px * math.sqrt(max(1.0 - lz * lz, 0.0)) / max(lz, 0.15)
    sigma = 0.4 * reach + 0.01 * size
    x0, y0, x1, y1 = layer.box
    pad = int(reach + 3.0 * sigma) + 3
    bx0, by0, bx1, by1 = max(x0 - pad, 0), max(y0 - pad, 0), min(x1 + pad, size), min(y1 + pad, size)
    footprint = np.zeros((by1 - by0, bx1 - bx0), np.float32)
    footprint[y0 - by0 : y1 - by0, x0 - bx0 : x1 - bx0] = layer.alpha
    norm = max(math.hypot(lx, ly), 1e-6)
    cast = _shift(footprint, int(round(-lx / norm * reach)), int(round(-ly / norm * reach)))
    cast = _blur(np.maximum(cast, footprint), sigma)
    contact = _blur(footprint, 0.006 * size + 0.5)
    direct = 1.0 / (1.0 + light.ambient)
    shade = 1.0 - (1.0 - strength * direct * cast) * (1.0 - 0.5 * contact)
    canvas[by0:by1, bx0:bx1] *= (1.0 - shade)[..., None]


def _composite(canvas, layer):
    x0, y0, x1, y1 = layer.box
    region = canvas[y0:y1, x0:x1]
    region *= (1.0 - layer.alpha)[..., None]
    region += layer.premultiplied


_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)
_TONE_TABLE_SIZE = 4096


def _tone_table():
    """Encoded value (0..1) per table step; steps are spaced on a square-root scale of linear light 0..4."""
    linear = 4.0 * np.linspace(0.0, 1.0, _TONE_TABLE_SIZE) ** 2
    shoulder = linear * (1.0 + linear / 4.0) / (1.0 + linear)  # highlights roll off instead of clipping hard
    return (np.clip(shoulder, 0.0, 1.0) ** (1.0 / 2.2)).astype(np.float32)


_TONE_TABLE = _tone_table()


def _tone(linear):
    """Tone curve and gamma of linear light, by table lookup (a power per pixel costs more than the scene)."""
    step = np.sqrt(np.clip(linear, 0.0, 4.0) * 0.25) * (_TONE_TABLE_SIZE - 1) + 0.5
    return _TONE_TABLE[step.astype(np.intp)]


def render(class_name, rng, image_size, knobs):
    """Draws one photograph of a part of ``class_name``.

    Returns ``(rgb, mask, jpeg_quality)``: ``uint8 [S, S, 3]``, ``uint8 [S, S]`` (0 or 255, the part's pixels)
    and the JPEG quality to save it with.
    """
    scene, sensor = rng.spawn(2)
    size = max(image_size, min(RENDER_MIN_SIZE, 4 * image_size))
    camera = _Camera(scene, size, knobs)
    light = _light(scene, knobs)
    y, x = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5) / size
    # Light falls off from a hotspot; the view ray fans out from the lens (flat metal shows a gradient).
    hot_x, hot_y = (scene.uniform(-0.3, 1.3) for _ in range(2))
    falloff = 1.0 / (1.0 + scene.uniform(0.0, 1.2) * ((x - hot_x) ** 2 + (y - hot_y) ** 2))
    fov = scene.uniform(0.25, 0.6)
    view = _normalize(-(x - 0.5) * fov, -(y - 0.5) * fov, np.ones_like(x))

    kind = list(BACKGROUNDS)[scene.integers(len(BACKGROUNDS))]
    albedo = BACKGROUNDS[kind](scene, size, x, y).astype(np.float32)
    canvas = albedo * (light.ambient * light.ambient_colour + light.direction[2] * light.colour)
    shadow_strength = scene.uniform(0.5, 0.85)
    clutter = scene.integers(1, knobs.clutter_max + 1) if scene.random() < knobs.clutter_prob else 0
    for _ in range(clutter):
        make, scale = _CLUTTER[scene.integers(len(_CLUTTER))]
        shape = make(scene)
        paint = _PAINTS[scene.integers(len(_PAINTS))] * scene.uniform(0.8, 2.5) if make is not _coin else None
        material = _material(scene, knobs, paint=paint)._replace(rust=0.0)
        cx, cy = (scene.uniform(0.0, size) for _ in range(2))
        pose = Pose(cx, cy, scene.uniform(0.0, _TAU), scene.uniform(*scale) * size)
        layer = _draw(shape, material, pose, camera, light, view)
        if layer is not None:
            _cast_shadow(canvas, layer, light, shadow_strength)
            _composite(canvas, layer)
    if scene.random() < knobs.shallow_focus_prob:  # the lens focused on the part: the bench is softer
        canvas = _blur(canvas, scene.uniform(0.5, 2.0) * knobs.blur_max * size / 256.0)

    shape = PART_BUILDERS[class_name](scene, knobs.alike)
    material = _material(scene, knobs)
    pose = _place_part(scene, shape, camera, knobs)
    layer = _draw(shape, material, pose, camera, light, view)
    _cast_shadow(canvas, layer, light, shadow_strength)
    _composite(canvas, layer)
    coverage = _full(layer, size)

    # Camera: exposure toward mid-grey, vignetting, a soft shoulder for highlights, gamma, saturation.
    luminance = float(np.mean((canvas @ _LUMA) * falloff))
    exposure = 0.2 * 2.0 ** scene.uniform(-0.7, 0.7) / max(luminance, 1e-4)
    gain = exposure * falloff * (1.0 - scene.uniform(0.0, 0.5) * ((x - 0.5) ** 2 + (y - 0.5) ** 2))
    encoded = _tone(canvas * gain[..., None])
    grey = encoded.mean(axis=-1, keepdims=True)
    encoded = grey + scene.uniform(0.8, 1.2) * (encoded - grey)
    rgb = Image.fromarray(np.clip(encoded * 255.0 + 0.5, 0, 255).astype(np.uint8))
    rgb = rgb.filter(ImageFilter.GaussianBlur(scene.uniform(0.0, knobs.blur_max) * size / 256.0))
    quality = int(scene.integers(knobs.jpeg_quality[0], knobs.jpeg_quality[1] + 1))
    noise_level = scene.uniform(0.1, 1.0) * knobs.noise_max * 255.0

    if size != image_size:
        rgb = rgb.resize((image_size, image_size), Image.LANCZOS)
        coverage = _resize(coverage, image_size, image_size, Image.BOX)
    pixels = np.asarray(rgb, np.float32)
    grain = 0.7 * sensor.standard_normal((image_size, image_size, 1), np.float32) + 0.5 * sensor.standard_normal(
        (image_size, image_size, 3), np.float32
    )
    pixels += grain * noise_level * np.sqrt(0.2 + pixels / 255.0)
    rgb = np.clip(pixels + 0.5, 0, 255).astype(np.uint8)
    # Thin parts at tiny sizes may not half-cover any pixel: then the most covered pixels make the mask.
    threshold = min(0.5, 0.5 * float(coverage.max()))
    mask = np.where(coverage >= threshold, 255, 0).astype(np.uint8)
    return rgb, mask, quality
