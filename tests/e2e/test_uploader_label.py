"""The file uploader's Chinese label (static/phone.css) sits on its browse button only: a chosen file's
remove button keeps its icon and gets no "选择文件" over it (issue 16). Screenshot: /tmp/uploader-*.png."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PIL import Image

from tests.e2e.conftest import settle, start_app

pytestmark = pytest.mark.e2e
TIMEOUT = 30_000
AFTER = "el => getComputedStyle(el, '::after').content"


@pytest.fixture(scope="module")
def base(seeded_store_url) -> Iterator[str]:
    with start_app(seeded_store_url, "serve.py") as url:  # as `make run` starts the app
        yield url


def test_the_label_is_on_the_browse_button_and_not_on_a_chosen_files_remove_button(base, page, tmp_path):
    photo = tmp_path / "scene.png"
    Image.new("RGB", (40, 30), (200, 80, 60)).save(photo)
    page.goto(base + "/report")
    zone = page.get_by_test_id("stFileUploaderDropzone").first
    zone.wait_for(timeout=TIMEOUT)
    settle(page)
    browse = zone.locator("button[data-testid='stBaseButton-secondary']")
    assert browse.evaluate(AFTER) == '"选择文件"'
    zone.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(photo))
    page.get_by_text("scene.png").wait_for(timeout=TIMEOUT)
    settle(page)
    remove = page.get_by_test_id("stFileChipDeleteBtn").first
    remove.wait_for(timeout=TIMEOUT)
    zone.screenshot(path="/tmp/uploader-chosen.png")
    assert remove.evaluate(AFTER) in ("none", "normal")
    others = zone.locator("button:not([data-testid='stBaseButton-secondary'])")
    assert all(b.evaluate(AFTER) in ("none", "normal") for b in others.all())
