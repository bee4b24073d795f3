"""The label editor in a real headless Chromium (Selenium): mouse-drawn polygons, keys, saving, refusals.

Skips, naming the packages, where Chromium and its driver are missing (``apt install chromium chromium-driver``).
Set ``DFL_EDITOR_SCREENSHOT=PATH`` to keep the screenshot of the labelled face (docs/images/xseg-editor.png).
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import OpenImageIO as oiio
import PIL.Image
import pytest
import skimage.data

from dfl_vfx.color.ocio import SRGB_SPACE, WorkingSpace
from dfl_vfx.face.template import FRONTAL_FACE_68
from dfl_vfx.faceset.faceset import Faceset
from dfl_vfx.faceset.metadata import FACE_ATTRIBUTE, FaceMetadata
from dfl_vfx.io.image import Image, write_image
from dfl_vfx.xseg.editor.server import open_editor
from dfl_vfx.xseg.labels import read_polygons

webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install -e '.[test]')")
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SIZE = 128
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver") or ("/usr/lib/chromium/chromedriver"
                                                if Path("/usr/lib/chromium/chromedriver").is_file() else None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Chromium and chromedriver for the editor's browser test: apt install chromium chromium-driver",
)


def make_faceset(root: Path) -> Faceset:
    faceset = Faceset.create(root, face_type="whole_face", size=SIZE)
    photo = skimage.data.astronaut()[20:240, 110:330].astype(np.float32) / 255.0
    srgb = cv2.resize(photo, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    working = WorkingSpace(plate_space=SRGB_SPACE).to_working(srgb)
    for k, frame in enumerate((1001, 1002, 1003)):
        landmarks = (FRONTAL_FACE_68 - [0.49, 0.55]) * (0.55 * SIZE) + SIZE / 2.0
        meta = FaceMetadata(
            face_type="whole_face", size=SIZE, source_filename=f"plate.{frame}.exr", source_frame=frame,
            face_index=0, source_rect=[0.0, 0.0, 10.0, 10.0], source_landmarks=landmarks, landmarks=landmarks,
            image_to_face_mat=[[1, 0, 0], [0, 1, 0]], pose={"pitch": 0.0, "yaw": 0.0, "roll": 0.0},
            detector="s3fd", score=0.9, colorspace="ACEScct", plate_colorspace=SRGB_SPACE,
            extra={"display_window": [0, 0, 1920, 1080], "kept": [1, 2.5, "x"]},
        )
        faceset.add(faceset.name_for(meta.source_filename, 0), np.roll(working, 9 * k, axis=1), meta)
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    applied = (((xs - 64) / 40.0) ** 2 + ((ys - 70) / 52.0) ** 2 <= 1).astype(np.float32)  # a "model's" mask
    (faceset.root / "xseg").mkdir()
    write_image(faceset.root / "xseg" / "plate.1001_0.png", Image.from_array(applied, fmt="uint8"))
    return faceset


def stored(path: Path) -> tuple[np.ndarray, dict]:
    """The face's pixels in their stored type and its metadata JSON."""
    inp = oiio.ImageInput.open(str(path))
    pixels = inp.read_image(0, 0, 0, inp.spec().nchannels, oiio.UNKNOWN)
    meta = json.loads(inp.spec().get_string_attribute(FACE_ATTRIBUTE))
    inp.close()
    return pixels, meta


@pytest.fixture()
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1180,720", "--force-device-scale-factor=1", "--no-first-run",
                "--disable-background-networking", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(15)
    try:
        yield driver
    finally:
        driver.quit()


def requested_urls(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def wait_state(driver, state: str, face: str | None = None) -> None:
    def ready(d) -> bool:
        body = d.find_element(By.TAG_NAME, "body")
        return body.get_attribute("data-state") == state and (face is None or body.get_attribute("data-face") == face)

    try:
        WebDriverWait(driver, 10).until(ready)
    except Exception:
        body, message = driver.find_element(By.TAG_NAME, "body"), driver.find_element(By.ID, "message").text
        pytest.fail(f"page never reached state {state} on {face}: it is {body.get_attribute('data-state')} on "
                    f"{body.get_attribute('data-face')}, saying {message!r}")


def click_points(driver, points: list[tuple[float, float]]) -> None:
    """Real mouse clicks at face coordinates (pixel centres) on the canvas."""
    canvas = driver.find_element(By.ID, "canvas")
    scale = float(driver.find_element(By.TAG_NAME, "body").get_attribute("data-scale"))
    width = canvas.size["width"]
    actions = ActionChains(driver)
    for x, y in points:  # Selenium offsets are from the element's centre
        actions.move_to_element_with_offset(canvas, round((x + 0.5) * scale - width / 2),
                                            round((y + 0.5) * scale - width / 2)).click()
    actions.perform()


def drag_point(driver, start: tuple[float, float], end: tuple[float, float]) -> None:
    canvas = driver.find_element(By.ID, "canvas")
    scale = float(driver.find_element(By.TAG_NAME, "body").get_attribute("data-scale"))
    half = canvas.size["width"] / 2
    x0, y0 = (round((v + 0.5) * scale - half) for v in start)
    x1, y1 = (round((v + 0.5) * scale - half) for v in end)
    ActionChains(driver).move_to_element_with_offset(canvas, x0, y0).click_and_hold() \
        .move_to_element_with_offset(canvas, (x0 + x1) // 2, (y0 + y1) // 2) \
        .move_to_element_with_offset(canvas, x1, y1).release().perform()


def keys(driver, *sequence: str) -> None:
    ActionChains(driver).send_keys(*sequence).perform()


def chord(driver, *modifiers: str, key: str) -> None:
    """A key pressed while modifiers are held (send_keys releases each key before the next)."""
    actions = ActionChains(driver)
    for modifier in modifiers:
        actions.key_down(modifier)
    actions.send_keys(key)
    for modifier in reversed(modifiers):
        actions.key_up(modifier)
    actions.perform()


def test_draw_save_step_and_refuse_in_chromium(tmp_path, browser):
    faceset = make_faceset(tmp_path / "fs")
    first, second = (faceset.face_path(f"plate.{f}_0.png") for f in (1001, 1002))
    before = {p: stored(p) for p in (first, second)}
    include = [(16.0, 14.0), (110.0, 18.0), (104.0, 118.0), (22.0, 112.0)]
    exclude = [(50.0, 40.0), (80.0, 44.0), (66.0, 76.0)]
    with open_editor(faceset.root) as server:
        browser.get(server.url)
        wait_state(browser, "ready", "plate.1001_0.png")
        assert float(browser.find_element(By.TAG_NAME, "body").get_attribute("data-scale")) >= 2

        click_points(browser, include)  # include is the starting mode (Q)
        keys(browser, Keys.ENTER)
        drag_point(browser, include[1], (112.0, 30.0))  # move a finished polygon's point
        include[1] = (112.0, 30.0)
        keys(browser, "w")
        click_points(browser, [*exclude, exclude[0]])  # clicking the first point closes the polygon
        click_points(browser, [(5.0, 5.0)])  # a stray point, then undo it and redo/undo again
        chord(browser, Keys.CONTROL, key="z")
        chord(browser, Keys.CONTROL, Keys.SHIFT, key="z")
        chord(browser, Keys.CONTROL, key="z")
        overlay = browser.find_element(By.ID, "overlay")
        assert "active" in overlay.get_attribute("class")  # the applied mask is overlaid
        keys(browser, "`")
        assert "active" not in overlay.get_attribute("class")
        keys(browser, "o")
        assert "active" in overlay.get_attribute("class")
        keys(browser, "s")
        wait_state(browser, "saved")
        shot = tmp_path / "editor.png"
        browser.save_screenshot(str(shot))
        keys(browser, "d")
        wait_state(browser, "ready", "plate.1002_0.png")

        # a self-intersecting polygon is refused with the server's one line; leaving the face is refused too
        keys(browser, "q")
        click_points(browser, [(10.0, 10.0), (90.0, 90.0), (90.0, 10.0), (10.0, 90.0)])
        keys(browser, Keys.ENTER, "s")
        wait_state(browser, "error")
        message = browser.find_element(By.ID, "message").text
        assert message.startswith("plate.1002_0.png: include polygon 1 crosses itself"), message
        keys(browser, Keys.ARROW_RIGHT)
        wait_state(browser, "error")
        assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-face") == "plate.1002_0.png"
        chord(browser, Keys.CONTROL, key="z")  # undo "finish": the bad polygon is in progress again; Esc drops it
        keys(browser, Keys.ESCAPE, Keys.ARROW_LEFT)  # stepping back saves the face, now unlabelled
        wait_state(browser, "ready", "plate.1001_0.png")
        assert "2 polygon(s)" in browser.find_element(By.ID, "message").text
        urls = requested_urls(browser)

        status = urllib.request.urlopen(server.url + "api/faces").status
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/api/faces")
        assert status == 200 and refused.value.code == 403

    polygons = read_polygons(faceset.record(first).meta)
    assert [p.kind for p in polygons] == ["include", "exclude"]
    for polygon, drawn in zip(polygons, (include, exclude), strict=True):
        assert polygon.points.shape == (len(drawn), 2)
        assert np.abs(polygon.points - np.array(drawn)).max() <= 1.0  # within a pixel of where we clicked
    for path in (first, second):
        pixels, meta = stored(path)
        old_pixels, old_meta = before[path]
        assert np.array_equal(pixels, old_pixels) and pixels.dtype == np.uint16
        meta["extra"].pop("seg_ie_polys", None)
        assert meta == old_meta
    assert "seg_ie_polys" not in stored(second)[1]["extra"]

    # the page's own origin only: its URLs under the token, and blob: copies of its own responses
    local = (f"http://127.0.0.1:{server.port}/{server.token}/", f"blob:http://127.0.0.1:{server.port}/")
    assert len(urls) >= 8 and all(url.startswith(local) for url in urls), [u for u in urls if not u.startswith(local)]
    assert any(url.endswith("prediction.png") for url in urls)
    assert shot.stat().st_size > 10_000
    target = os.environ.get("DFL_EDITOR_SCREENSHOT")
    if target:  # 256 colours keep the docs' screenshot small
        PIL.Image.open(shot).convert("RGB").quantize(256).save(target, optimize=True)
