"""Random HTTP requests (JSON bodies, query values, uploads, form fields): only 200 or a JSON 4xx, never a 500,
a traceback or a hang."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from conftest import DENSE2
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import vae_gen
from vae_gen import serve as server

#: No request may take longer than this, however odd (a valid one here decodes at most a few hundred images).
SECONDS_PER_REQUEST = 10.0
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Values chosen to reach every validation branch: numbers at and past their bounds, wrong types, odd text.
ODD_SCALARS = st.one_of(
    st.sampled_from([0, 1, 3, -1, 2**31, 2**64, 10**400, 0.5, 1e308, -0.0, True, False, None, "", "1", "all",
                     "T-shirt/top", "Coat:0.5,Bag:0.5", "\x00", "é" * 300, [], {}, [1, 2], {"a": 1}]),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)  # fmt: skip
KEYS = ["model", "n", "seed", "start", "temperature", "class", "guidance", "format", "latents", "labels", "prior", "zzz"]


@pytest.fixture(scope="module")
def client() -> TestClient:
    models = {name: vae_gen.load(name) for name in (vae_gen.DEFAULT_MODEL, DENSE2, "fashion-mnist-conditional32")}
    settings_ = server.ServerSettings(models=models, default_model=DENSE2, selftests={name: True for name in models})
    return TestClient(server.create_app(settings_), raise_server_exceptions=False)


def assert_answered_well(response, started: float) -> None:
    assert time.monotonic() - started < SECONDS_PER_REQUEST
    assert response.status_code == 200 or 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code != 200:
        assert response.headers["content-type"] == "application/json"
        error = response.json()["error"]
        assert error["message"] and "Traceback" not in error["message"] and "\n" not in error["message"]


@FUZZ
@given(path=st.sampled_from(["/v1/generate", "/v1/decode"]), body=st.dictionaries(st.sampled_from(KEYS), ODD_SCALARS))
def test_random_json_bodies(client, path, body):
    if path == "/v1/generate" and isinstance(body.get("n"), int) and not isinstance(body.get("n"), bool):
        body["n"] = min(body["n"], 64)  # a valid count is served; keep the test fast
    started = time.monotonic()
    text = json.dumps(body, allow_nan=True)
    assert_answered_well(client.post(path, content=text, headers={"content-type": "application/json"}), started)


@FUZZ
@given(raw=st.binary(max_size=200))
def test_random_bytes_as_a_json_body(client, raw):
    started = time.monotonic()
    assert_answered_well(client.post("/v1/generate", content=raw, headers={"content-type": "application/json"}), started)


@FUZZ
@given(
    model=st.sampled_from([DENSE2, "fashion-mnist-conditional32", "nope", "..", "%00"]),
    seed=st.sampled_from(["0", "-1", "x", str(2**64), "1e3"]),
    index=st.sampled_from(["0", "7", "-3", "9" * 30, "1.5"]),
    query=st.dictionaries(st.sampled_from(["temperature", "class", "guidance", "other"]), st.text(max_size=20), max_size=3),
)
def test_random_image_urls(client, model, seed, index, query):
    started = time.monotonic()
    assert_answered_well(client.get(f"/v1/models/{model}/images/{seed}/{index}.png", params=query), started)


def picture_bytes(kind: str, data) -> bytes:
    if kind == "bytes":
        return data.draw(st.binary(max_size=400))
    side = data.draw(st.integers(1, 64))
    mode = data.draw(st.sampled_from(["L", "RGB", "RGBA", "P", "1", "I;16", "F", "CMYK"]))
    array = np.random.default_rng(side).integers(0, 255, (side, side, 3), dtype=np.uint8)
    picture = Image.fromarray(array).convert(mode)
    buffer = io.BytesIO()
    picture.save(buffer, format=data.draw(st.sampled_from(["PNG", "TIFF", "BMP", "GIF", "WEBP"])) if mode not in
                 ("I;16", "F", "CMYK") else "TIFF")  # fmt: skip
    payload = buffer.getvalue()
    if kind == "cut":
        payload = payload[: data.draw(st.integers(0, len(payload)))]
    return payload


@FUZZ
@given(data=st.data())
def test_random_uploads_and_form_fields(client, data):
    payload = picture_bytes(data.draw(st.sampled_from(["picture", "cut", "bytes"])), data)
    form = data.draw(st.dictionaries(st.sampled_from(["model", "variations", "seed", "class", "invert"]),
                                     st.sampled_from(["", "0", "2", "65", "-1", "x", "yes", "auto", "Coat", DENSE2,
                                                      vae_gen.DEFAULT_MODEL, "fashion-mnist-conditional32"])))  # fmt: skip
    started = time.monotonic()
    response = client.post("/v1/reconstruct", files={"image": ("x", payload, "application/octet-stream")}, data=form)
    assert_answered_well(response, started)
