"""The console's images page in a real browser (headless Debian chromium) on the local stack: a photo dropped on the
page is uploaded and its renditions appear beside it without a reload; a broken file chosen with the picker shows
as rejected with its reason. Screenshots: .local/screenshots/console-images*.png."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import image_samples as samples
import pytest
from selenium.webdriver.common.by import By
from waiting import wait_for

from images.image_settings import ImageSettings

# A drop as the browser makes it when a file is dragged from the desktop: a DataTransfer holding a File.
DROP = """
const [zone, b64, name] = arguments;
const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
const data = new DataTransfer();
data.items.add(new File([bytes], name, {type: "image/jpeg"}));
for (const type of ["dragenter", "dragover", "drop"]) {
  zone.dispatchEvent(new DragEvent(type, {dataTransfer: data, bubbles: true, cancelable: true}));
}
"""


SETTINGS = ImageSettings.from_env()  # the stack's services run in this environment too


@pytest.fixture
def console(clean_stack: dict[str, Any]) -> str:
    return clean_stack["services"]["console"]


def _entry(browser: Any, filename: str, status: str) -> Any:
    for item in browser.find_elements(By.CSS_SELECTOR, f'li.image[data-status="{status}"]'):
        if item.find_element(By.CLASS_NAME, "filename").text == filename:
            return item
    return None


def test_the_file_picker_is_labelled_and_reachable_by_keyboard(browser: Any, console: str) -> None:
    browser.get(f"{console}/images")

    picker = browser.find_element(By.CSS_SELECTOR, "#drop-zone input[type=file]")
    label = browser.find_element(By.CSS_SELECTOR, f'label[for="{picker.get_attribute("id")}"]')

    assert label.text == "Photo to upload"
    assert (
        f"At most {SETTINGS.max_upload_bytes // 2**20} MiB"
        in browser.find_element(By.ID, picker.get_attribute("aria-describedby")).text
    )
    assert picker.get_attribute("tabindex") in (None, "0") and picker.is_enabled()
    assert browser.find_element(By.ID, "no-images").text == "No images yet. Upload a photo above."


def test_a_dropped_photos_renditions_appear_beside_it_without_a_reload(
    browser: Any, screenshot: Any, console: str
) -> None:
    browser.get(f"{console}/images")
    photo = base64.b64encode(samples.photo_jpeg(1200, 800)).decode()

    browser.execute_script(DROP, browser.find_element(By.ID, "drop-zone"), photo, "harbour.jpg")

    wait_for(lambda: browser.find_elements(By.ID, "uploaded"), seconds=20, what="the upload's landing page")
    assert "Uploaded harbour.jpg" in browser.find_element(By.ID, "uploaded").text
    browser.execute_script("window.__sameDocument = true")  # a reload would lose it
    entry = wait_for(lambda: _entry(browser, "harbour.jpg", "processed"), seconds=60, what="the renditions shown")
    pictures = entry.find_elements(By.CSS_SELECTOR, "li.rendition img")
    assert [p.get_attribute("alt") for p in pictures] == [
        f"{spec.label} rendition of harbour.jpg" for spec in sorted(SETTINGS.specs, key=lambda s: -s.longest_edge)
    ]
    loaded = wait_for(
        lambda: (
            all(
                browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", p) for p in pictures
            )
            and [browser.execute_script("return arguments[0].naturalWidth", p) for p in pictures]
        ),
        seconds=20,
        what="the renditions' bytes, served by the console",
    )
    assert loaded == [min(spec.longest_edge, 1200) for spec in sorted(SETTINGS.specs, key=lambda s: -s.longest_edge)]
    assert "JPEG, 1200 × 800 px" in entry.find_element(By.CLASS_NAME, "original").text
    assert browser.execute_script("return window.__sameDocument === true")  # the list changed in place
    assert browser.find_element(By.ID, "recent").get_attribute("data-updated")
    screenshot("console-images")


def test_a_broken_upload_shows_as_rejected_with_its_reason(
    browser: Any, screenshot: Any, console: str, tmp_path: Path
) -> None:
    broken = tmp_path / "notes.jpg"
    broken.write_text("these are my notes, not a photo\n")
    browser.get(f"{console}/images")

    browser.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(broken))
    browser.find_element(By.CSS_SELECTOR, "#upload button[type=submit]").click()

    wait_for(lambda: browser.find_elements(By.ID, "uploaded"), seconds=20, what="the upload's landing page")
    entry = wait_for(lambda: _entry(browser, "notes.jpg", "rejected"), seconds=60, what="the rejection shown")
    reason = entry.find_element(By.CSS_SELECTOR, ".reason")
    assert reason.get_attribute("data-reason") == "not_an_image"
    assert reason.text.startswith("Rejected: the file is not an image")
    assert entry.find_elements(By.CSS_SELECTOR, "img") == []
    screenshot("console-images-rejected")
