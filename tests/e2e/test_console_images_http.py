"""The console's images pages over plain HTTP on the local stack (no JavaScript): a form post stores the photo in the
uploads bucket, the images service renders it, and the console lists and serves the renditions from the private
renditions bucket; an upload over the images service's own limit, or from another site, stores nothing. The tests
marked ``compose`` also run against the console's image under docker compose."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from typing import Any

import image_samples as samples
import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from PIL import Image
from waiting import wait_for

from console.image_uploads import PREFIX
from images.image_settings import ImageSettings

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
UPLOADS = "shop-uploads"
SETTINGS = ImageSettings.from_env()  # the stack's services run in this environment too


@pytest.fixture
def console(clean_stack: dict[str, Any]) -> str:
    return clean_stack["services"]["console"]


@pytest.fixture
def gcs(clean_stack: dict[str, Any]) -> storage.Client:
    return storage.Client(project=clean_stack["project"], credentials=AnonymousCredentials())


def _form(session: requests.Session, console: str) -> str:
    page = session.get(f"{console}/images", timeout=10)
    assert page.status_code == 200, page.text
    return TOKEN.search(page.text).group(1)


def _console_uploads(gcs: storage.Client) -> set[str]:
    return {blob.name for blob in gcs.list_blobs(UPLOADS, prefix=f"{PREFIX}/")}


def _recent(session: requests.Session, console: str) -> dict[str, Any]:
    answer = session.get(f"{console}/images/recent", timeout=10)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/json"
    return json.loads(answer.text)


@pytest.mark.compose
def test_a_form_posted_photo_is_stored_rendered_and_its_renditions_served(console: str, gcs: storage.Client) -> None:
    session = requests.Session()
    token = _form(session, console)
    before = _console_uploads(gcs)
    photo = samples.photo_jpeg(900, 600)

    posted = session.post(
        f"{console}/images",
        data={"csrf_token": token},
        files={"photo": ("beach day.jpg", photo, "image/jpeg")},
        headers={"Origin": console},
        allow_redirects=False,
        timeout=30,
    )

    assert posted.status_code == 303, posted.text
    (stored,) = _console_uploads(gcs) - before
    assert stored.endswith("/beach-day.jpg")
    blob = gcs.bucket(UPLOADS).get_blob(stored)  # the bytes, by digest: compose download links name its own host
    assert (blob.size, blob.md5_hash) == (len(photo), base64.b64encode(hashlib.md5(photo).digest()).decode())
    landing = session.get(console + posted.headers["Location"], timeout=10)
    assert "Uploaded <strong>beach day.jpg</strong>" in landing.text

    html = wait_for(
        lambda: (
            (r := _recent(session, console))["waiting"] == 0 and 'data-status="processed"' in r["html"] and r["html"]
        ),
        seconds=60,
        what="the renditions listed",
    )
    urls = re.findall(r'<img src="([^"]+)"', html)
    assert len(urls) == len(SETTINGS.specs)  # one picture per size
    thumb = next(url for url in urls if "/thumb." in url)
    served = session.get(console + thumb, timeout=10)
    assert served.status_code == 200 and served.headers["Content-Type"] == "image/jpeg", served.text
    assert max(Image.open(io.BytesIO(served.content)).size) == 200
    # The page's own scripts, from the console itself (the image ships them).
    for script in re.findall(r'<script src="([^"]+)"', landing.text):
        asset = session.get(console + script, timeout=10)
        assert asset.status_code == 200 and "javascript" in asset.headers["Content-Type"], script


def test_an_upload_over_the_images_services_limit_is_refused_and_stores_nothing(
    console: str, gcs: storage.Client
) -> None:
    session = requests.Session()
    token = _form(session, console)
    before = _console_uploads(gcs)
    limit = SETTINGS.max_upload_bytes

    one_over = session.post(
        f"{console}/images",
        data={"csrf_token": token},
        files={"photo": ("huge.jpg", b"\xff" * (limit + 1), "image/jpeg")},
        timeout=60,
    )
    far_over = session.post(  # refused by its declared length, before the body is read
        f"{console}/images",
        data={"csrf_token": token},
        files={"photo": ("huger.jpg", b"\xff" * (limit + 64 * 1024), "image/jpeg")},
        timeout=60,
    )

    assert (one_over.status_code, far_over.status_code) == (413, 413)
    allowed = f"photos may be at most {limit / 2**20:.1f} MiB ({limit} bytes)"
    assert f"The file is {(limit + 1) / 2**20:.1f} MiB ({limit + 1} bytes); {allowed}" in one_over.text
    assert re.search(rf"This upload is \d+ bytes; {re.escape(allowed)}", far_over.text)
    assert _console_uploads(gcs) == before


@pytest.mark.compose
def test_an_upload_from_another_site_or_without_the_token_stores_nothing(console: str, gcs: storage.Client) -> None:
    session = requests.Session()
    token = _form(session, console)
    before = _console_uploads(gcs)
    photo = {"photo": ("p.jpg", samples.photo_jpeg(64, 64), "image/jpeg")}

    cross_site = session.post(
        f"{console}/images",
        data={"csrf_token": token},
        files=photo,
        headers={"Sec-Fetch-Site": "cross-site"},
        timeout=10,
    )
    no_token = session.post(f"{console}/images", files=photo, timeout=10)

    assert (cross_site.status_code, no_token.status_code) == (403, 403)
    assert "another site" in cross_site.text and "token is missing" in no_token.text
    assert _console_uploads(gcs) == before


@pytest.mark.compose
def test_only_renditions_are_served_never_an_upload(console: str, gcs: storage.Client) -> None:
    upload = gcs.bucket(UPLOADS).blob("elsewhere/secret.jpg")
    upload.upload_from_string(samples.photo_jpeg(32, 32), content_type="image/jpeg")

    answer = requests.get(f"{console}/images/renditions/elsewhere/secret.jpg", timeout=10)
    posted = requests.post(f"{console}/images/renditions/elsewhere/secret.jpg", timeout=10)

    assert answer.status_code == 404 and "There is no rendition" in answer.text
    assert posted.status_code == 405
