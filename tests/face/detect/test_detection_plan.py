"""Automatic detection scale: the smallest face looked for, the copies searched, dlib's real floor, threads."""

import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.face.detect import DlibBackend, auto_min_face, detection_plan, find_faces
from dfl_vfx.face.detect.dlib_backend import SMALLEST_FACE

SCOPE = (986, 2176)  # a 2048x858 plate with 64 px of overscan
DEMO = (1208, 2048)  # 1920x1080 with 64 px of overscan
ASTRONAUT_BOX = 87  # width of dlib's HOG box on the astronaut photo (see test_dlib_backend)


def test_auto_min_face_is_a_tenth_of_the_shorter_side_at_least_40() -> None:
    assert auto_min_face(SCOPE) == 99
    assert auto_min_face(DEMO) == 121
    assert auto_min_face((2160, 4096)) == 216
    assert auto_min_face((300, 200)) == 40


def test_auto_copy_keeps_the_smallest_face_at_the_detectors_floor(hog: DlibBackend) -> None:
    [(factor, smallest)] = detection_plan(SCOPE, hog)
    assert smallest == 99
    # a 99 px face becomes just under the 72 px of HOG's smallest box: a 1572 px copy where 640 was the default
    assert 71 <= smallest * factor < 72 and round(SCOPE[1] * factor) == 1572
    # the smallest box HOG can report, scaled back to the plate, is not dropped as smaller than min_face
    assert SMALLEST_FACE["hog"] / factor >= smallest
    [(factor, smallest)] = detection_plan(SCOPE, hog, min_face=150)
    assert round(SCOPE[1] * factor) == 1037


def test_auto_copy_is_never_under_640_nor_over_full_size(hog: DlibBackend) -> None:
    [(factor, _)] = detection_plan((2160, 4096), hog, min_face=600)
    assert round(4096 * factor) == 640
    [(factor, _)] = detection_plan(SCOPE, hog, min_face=50)
    assert factor == 1.0


def test_explicit_detect_size_gives_one_copy(hog: DlibBackend) -> None:
    assert detection_plan(SCOPE, hog, detect_size=640) == [(640 / 2176, 99)]
    assert detection_plan(SCOPE, hog, detect_size=640, min_face=40, enough=1) == [(640 / 2176, 40)]
    with pytest.raises(DflError, match="--detect-size -1"):
        detection_plan(SCOPE, hog, detect_size=-1)
    with pytest.raises(DflError, match="--min-face -5"):
        detection_plan(SCOPE, hog, min_face=-5)


def test_largest_faces_are_looked_for_on_a_coarse_copy_first(hog: DlibBackend) -> None:
    (coarse, coarse_min), (fine, fine_min) = detection_plan(DEMO, hog, enough=1)
    assert fine_min == 121 and round(DEMO[1] * fine) == 1210
    # half the fine copy would be under 640 px, so the coarse copy is the 640 of old, where the demo's ~280 px
    # face is found; only faces the coarse copy shows as well as the fine one shows min_face count there
    assert round(DEMO[1] * coarse) == 640 and coarse_min == 229
    assert detection_plan(DEMO, hog, enough=0) == [(fine, fine_min)]
    (coarse, coarse_min), _ = detection_plan(SCOPE, hog, enough=2)
    assert round(SCOPE[1] * coarse) == 786 and coarse_min == 198  # half the fine copy


def _astronaut_with_face(astronaut: np.ndarray, box: float) -> np.ndarray:
    """The astronaut photo scaled so dlib's box on her face is about ``box`` px, on a 3x wider grey canvas."""
    scale = box / ASTRONAUT_BOX
    photo = cv2.resize(astronaut, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.full((photo.shape[0], photo.shape[1] * 3, 3), 90, np.uint8)
    canvas[:, photo.shape[1] : 2 * photo.shape[1]] = photo
    return canvas


def test_hog_smallest_box_is_72_px_and_it_finds_faces_down_to_about_60(astronaut: np.ndarray) -> None:
    plain = DlibBackend(upsample=0)
    for box in (62, 70):
        rects = plain.detect(_astronaut_with_face(astronaut, box))
        assert len(rects) >= 1 and min(r[2] - r[0] for r, _ in rects) == SMALLEST_FACE["hog"] == 72.0
    assert plain.detect(_astronaut_with_face(astronaut, 45)) == []


def test_dlib_upsamples_only_when_the_wanted_faces_need_it(astronaut: np.ndarray) -> None:
    small_face = _astronaut_with_face(astronaut, 45)  # found only on the doubled image
    backend = DlibBackend(upsample=1)
    assert backend.detect_at_least(small_face, 72) == []  # faces under 72 px are not wanted: no upsampling
    found = backend.detect_at_least(small_face, 40)
    assert len(found) == 1 and found[0][0][2] - found[0][0][0] < 72
    assert DlibBackend(upsample=0).detect_at_least(small_face, 20) == []  # never more than the option allows


def test_auto_default_finds_a_small_face_the_640_copy_misses_next_to_a_big_one(astronaut: np.ndarray,
                                                                              hog: DlibBackend) -> None:
    # A 2176x986 frame with a 150 px face and a 230 px one. On a 640 copy the big face (68 px) is found without
    # upsampling, so the small one (44 px, found only upsampled) is never looked for.
    head = astronaut[:330, 100:350]  # her face box is (79, 83, 166, 170) in this crop
    frame = np.full((986, 2176, 3), 70, np.uint8)
    for box, x in ((150, 300), (230, 1300)):
        scale = box / ASTRONAUT_BOX
        photo = cv2.resize(head, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        frame[50 : 50 + photo.shape[0], x : x + photo.shape[1]] = photo
    old = find_faces(frame, hog, detect_size=640, min_face=40)
    new = find_faces(frame, hog)
    assert len(old) == 1 and old[0].width > 200
    assert len(new) == 2 and 130 < new[1].width < 185 and new[0].width > 200


def test_threads_share_the_hog_detector_without_crashing(tmp_path) -> None:
    # dlib releases the GIL while detecting and its HOG scanner keeps the image in the object: without the
    # backend's lock, two threads detecting at once crash the interpreter (segmentation fault).
    script = textwrap.dedent("""
        import threading, cv2, numpy as np, skimage.data
        from dfl_vfx.face.detect import DlibBackend
        backend = DlibBackend(upsample=0)
        photo = skimage.data.astronaut()
        images = [np.ascontiguousarray(cv2.resize(photo, None, fx=s, fy=s)) for s in (1.0, 1.7)]
        expected = [backend.detect(image) for image in images]
        wrong = []
        def work(k):
            for _ in range(40):
                if backend.detect(images[k % 2]) != expected[k % 2]:
                    wrong.append(k)
        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        print("wrong", len(wrong))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "wrong 0"
