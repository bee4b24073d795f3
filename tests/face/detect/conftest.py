"""Shared test images (public-domain faces shipped in packages) and a dlib backend."""

import cv2
import numpy as np
import pytest
import skimage.data
from matplotlib import cbook

from dfl_vfx.face.detect import DlibBackend


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return skimage.data.astronaut()


@pytest.fixture(scope="session")
def grace_hopper() -> np.ndarray:
    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="session")
def hog() -> DlibBackend:
    return DlibBackend()
