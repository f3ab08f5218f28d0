"""`vae-gen serve`: the HTTP API, in-process through FastAPI's TestClient (the serve extra)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from conftest import DENSE2
from fastapi.testclient import TestClient
from PIL import Image

import vae_gen
from vae_gen import serve as server
from vae_gen.cli.commands import main
from vae_gen.output.images import png_bytes
from vae_gen.serve.limits import MAX_BODY_BYTES


def make_settings(**options) -> server.ServerSettings:
    models = {name: vae_gen.load(name) for name in (vae_gen.DEFAULT_MODEL, DENSE2)}
    return server.ServerSettings(
        models=models, default_model=vae_gen.DEFAULT_MODEL, selftests={name: True for name in models}, **options
    )


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(server.create_app(make_settings()))


def error_of(response) -> dict:
    assert response.headers["content-type"] == "application/json"
    return response.json()["error"]


def test_health_readiness_and_models(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    models = client.get("/v1/models").json()["models"]
    assert [m["name"] for m in models] == [vae_gen.DEFAULT_MODEL, DENSE2] and models[0]["default"] is True
    assert models[1]["latent_dim"] == 2 and models[1]["image_shape"] == [28, 28, 1] and models[1]["classes"] == []
    card = client.get(f"/v1/models/{DENSE2}").json()
    assert card["name"] == DENSE2 and "golden" not in card


def test_one_image_is_the_png_sample_writes_and_is_cached_forever(client, tmp_path):
    assert main(["sample", "-n", "40", "--seed", "7", "--out", str(tmp_path / "s")]) == 0
    response = client.get(f"/v1/models/{vae_gen.DEFAULT_MODEL}/images/7/37.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.content == (tmp_path / "s" / "000037.png").read_bytes()
    assert "immutable" in response.headers["cache-control"]
    again = client.get(f"/v1/models/{vae_gen.DEFAULT_MODEL}/images/7/37.png", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    hotter = client.get(f"/v1/models/{vae_gen.DEFAULT_MODEL}/images/7/37.png?temperature=1.5")
    assert hotter.headers["etag"] != response.headers["etag"] and hotter.content != response.content


def test_generate_gives_the_clis_images_in_every_format(client, tmp_path):
    request = {"model": DENSE2, "n": 12, "seed": 3, "start": 5}
    expected = vae_gen.load(DENSE2).generate(12, 3, start=5)
    npy = client.post("/v1/generate", json=request | {"format": "npy"})
    assert np.array_equal(np.load(io.BytesIO(npy.content)), expected)
    archive = zipfile.ZipFile(io.BytesIO(client.post("/v1/generate", json=request | {"format": "zip"}).content))
    assert archive.namelist() == [f"{i:06d}.png" for i in range(5, 17)]
    assert main(["sample", "--model", DENSE2, "-n", "17", "--seed", "3", "--start", "5", "--out", str(tmp_path / "s"),
                 "--grid", str(tmp_path / "g.png")]) == 0  # fmt: skip
    assert archive.read("000016.png") == (tmp_path / "s" / "000016.png").read_bytes()
    listed = client.post("/v1/generate", json=request | {"format": "json"}).json()["images"]
    assert listed[0]["index"] == 5 and base64.b64decode(listed[-1]["png"]) == (tmp_path / "s" / "000016.png").read_bytes()
    sheet = client.post("/v1/generate", json=request)
    assert sheet.headers["content-type"] == "image/png" and sheet.content == (tmp_path / "g.png").read_bytes()


def test_decode_and_reconstruct(client):
    z = vae_gen.load(DENSE2).latents(3, seed=1)
    decoded = client.post("/v1/decode", json={"model": DENSE2, "latents": z.tolist(), "format": "npy"})
    assert np.array_equal(np.load(io.BytesIO(decoded.content)), vae_gen.load(DENSE2).decode_uint8(z))
    picture = io.BytesIO()
    Image.new("L", (40, 40), 30).save(picture, format="PNG")
    response = client.post("/v1/reconstruct", files={"image": ("x.png", picture.getvalue(), "image/png")},
                           data={"variations": "2"})  # fmt: skip
    assert response.status_code == 200
    with Image.open(io.BytesIO(response.content)) as sheet:
        assert sheet.size == (2 + 4 * 30, 2 + 30)


def test_a_latent_is_the_one_the_runtime_draws_and_decodes_to_its_image(client):
    generator = vae_gen.load(DENSE2)
    body = client.get(f"/v1/models/{DENSE2}/latents/3/300?temperature=0.7").json()
    assert {k: v for k, v in body.items() if k != "latent"} == {"model": DENSE2, "seed": 3, "index": 300, "temperature": 0.7}
    z = generator.latents(1, 3, start=300, temperature=0.7)
    assert np.array_equal(np.asarray([body["latent"]], np.float32), z)  # JSON carries float32 exactly
    decoded = client.post("/v1/decode", json={"model": DENSE2, "latents": [body["latent"]], "format": "npy"})
    assert np.array_equal(np.load(io.BytesIO(decoded.content)), generator.decode_uint8(z))
    default = client.get(f"/v1/models/{vae_gen.DEFAULT_MODEL}/latents/0/0").json()
    assert np.array_equal(np.asarray(default["latent"], np.float32), vae_gen.load().latents(1, 0)[0])


def test_activity_ranks_the_dimensions_the_decoder_uses(client):
    from vae_gen.core.constants import ACTIVITY_SAMPLES, ACTIVITY_SEED

    generator = vae_gen.load(DENSE2)
    z_mean, _ = generator.encode(generator.decode(generator.latents(ACTIVITY_SAMPLES, ACTIVITY_SEED)))
    dense2 = client.get(f"/v1/models/{DENSE2}/activity").json()
    assert dense2["measured"] is True and np.allclose(dense2["variances"], z_mean.astype(np.float64).var(axis=0))
    assert dense2["dimensions"] == list(np.argsort(-np.asarray(dense2["variances"]), kind="stable"))
    assert f"over {ACTIVITY_SAMPLES} of the model's own decoded samples" in dense2["method"]
    default = client.get(f"/v1/models/{vae_gen.DEFAULT_MODEL}/activity").json()
    order, variances = default["dimensions"], default["variances"]
    assert sorted(order) == list(range(32)) and [variances[d] for d in order] == sorted(variances, reverse=True)
    assert variances[order[0]] > 0.5 and variances[order[-1]] < 0.01  # it uses some of its 32 dimensions, not all


def test_activity_of_a_conditional_model_decodes_and_encodes_every_class():
    from vae_gen.sampling.latent_activity import latent_activity

    dense2, seen = vae_gen.load(DENSE2), []

    class Conditional:  # the shipped models are unconditional: dense2, pretending to have classes
        classes, has_encoder, latent_dim, latents = ("a", "b"), True, 2, dense2.latents

        def decode(self, z, *, label=None):
            seen.append(("decode", label))
            return dense2.decode(z)

        def encode(self, images, *, label=None):
            seen.append(("encode", label))
            return dense2.encode(images)

    assert latent_activity(Conditional()).measured and seen == [("decode", "all"), ("encode", "all")]


def test_activity_is_measured_once_per_model_and_a_decoder_only_model_lists_its_dimensions(monkeypatch):
    calls = []
    from vae_gen.serve import state

    real = state.latent_activity
    monkeypatch.setattr(state, "latent_activity", lambda generator: calls.append(generator.name) or real(generator))
    tiny = vae_gen.load(Path(__file__).parent / "fixtures" / "tiny-gray-20x12")  # decoder-only
    settings = make_settings()
    settings.models[tiny.name] = tiny
    client = TestClient(server.create_app(settings))
    first, again = (client.get(f"/v1/models/{DENSE2}/activity").json() for _ in range(2))
    assert first == again and calls == [DENSE2]
    unmeasured = client.get(f"/v1/models/{tiny.name}/activity").json()
    assert unmeasured["measured"] is False and unmeasured["variances"] is None
    assert unmeasured["dimensions"] == [0, 1] and "no encoder" in unmeasured["method"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code", "message"),
    [
        ("get", "/v1/models/nope", None, 404, "unknown_model", "no model 'nope'; this server has: "),
        ("get", "/no/such/route", None, 404, "not_found", "no route GET /no/such/route"),
        ("post", "/v1/generate", {"n": 5000}, 413, "too_large", "n 5000: at most 1024 images per request"),
        ("post", "/v1/generate", {"temperature": 0}, 422, "invalid_request", "temperature: Input should be greater than 0"),
        ("post", "/v1/generate", {"class": "Shirt"}, 400, "bad_value", "is not class-conditional, so it takes no label"),
        ("post", "/v1/decode", {"latents": [[0.0, 1.0]]}, 400, "bad_value", "latents must have shape [n, 32]"),
        ("get", "/v1/models/fashion-mnist-dense2/images/1/-3.png", None, 422, "invalid_request", "index"),
        ("get", "/v1/models/nope/latents/0/0", None, 404, "unknown_model", "no model 'nope'; this server has: "),
        ("get", "/v1/models/nope/activity", None, 404, "unknown_model", "no model 'nope'; this server has: "),
        ("get", "/v1/models/fashion-mnist-dense2/latents/0/-1", None, 422, "invalid_request", "index: Input should be"),
        ("get", "/v1/models/fashion-mnist-dense2/latents/x/0", None, 422, "invalid_request", "seed: Input should be"),
        ("get", "/v1/models/fashion-mnist-dense2/latents/0/0?temperature=0", None, 422, "invalid_request",
         "temperature: Input should be greater than 0"),
        ("get", f"/v1/models/fashion-mnist-dense2/latents/0/{2**41}", None, 400, "bad_value",
         f"start index must be an integer from 0 to {2**40}, got {2**41}"),
    ],
)
def test_errors_are_json_with_the_right_status(client, method, path, body, status, code, message):
    response = getattr(client, method)(path, **({"json": body} if body is not None else {}))
    assert response.status_code == status
    error = error_of(response)
    assert error["code"] == code and message in error["message"], error


def test_bodies_and_pictures_over_the_limits_are_413(client):
    big = client.post("/v1/decode", content=b"[" * (MAX_BODY_BYTES + 1), headers={"content-type": "application/json"})
    assert big.status_code == 413 and error_of(big)["code"] == "too_large"
    bomb = io.BytesIO()
    Image.new("L", (6000, 6000)).save(bomb, format="PNG")  # 36 megapixels in a few kB
    response = client.post("/v1/reconstruct", files={"image": ("bomb.png", bomb.getvalue(), "image/png")})
    assert response.status_code == 413 and "at most 25,000,000" in error_of(response)["message"]
    junk = client.post("/v1/reconstruct", files={"image": ("x.png", b"not a picture", "image/png")})
    assert junk.status_code == 400 and "not a picture Pillow can read" in error_of(junk)["message"]


def test_a_key_guards_every_endpoint_but_healthz():
    guarded = TestClient(server.create_app(make_settings(api_key="s3cret")))
    assert guarded.get("/healthz").status_code == 200
    page = guarded.get("/")  # the web page's static files hold no data; the API calls they make send the key
    assert page.status_code == 200 and "<title>vae-gen</title>" in page.text
    for path in ("/v1/models", "/readyz", "/docs", "/openapi.json"):
        refused = guarded.get(path)
        assert refused.status_code == 401 and error_of(refused)["code"] == "unauthorized", path
    assert guarded.get("/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert guarded.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def slow(generator: vae_gen.Generator, seconds: float):
    real = generator.images

    def generate(*args, **kwargs):
        time.sleep(seconds)
        return real(*args, **kwargs)

    return generate


def test_a_full_queue_answers_429_with_retry_after(monkeypatch):
    import httpx

    settings = make_settings(jobs=1)
    monkeypatch.setattr(settings.models[DENSE2], "images", slow(settings.models[DENSE2], 0.3))
    from vae_gen.serve import state

    monkeypatch.setattr(state, "QUEUE_LIMIT", 1)
    app = server.create_app(settings)

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return await asyncio.gather(*[client.post("/v1/generate", json={"model": DENSE2, "n": 1}) for _ in range(4)])

    statuses = sorted(r.status_code for r in asyncio.run(burst()))
    assert statuses[0] == 200 and 429 in statuses
    busy = next(r for r in asyncio.run(burst()) if r.status_code == 429)
    assert busy.headers["retry-after"] == "1" and busy.json()["error"]["code"] == "busy"


def test_a_request_over_its_time_limit_is_503_and_a_fault_is_a_json_500(monkeypatch):
    settings = make_settings(request_seconds=0.05)
    monkeypatch.setattr(settings.models[DENSE2], "images", slow(settings.models[DENSE2], 0.5))
    client = TestClient(server.create_app(settings), raise_server_exceptions=False)
    late = client.post("/v1/generate", json={"model": DENSE2, "n": 1})
    assert late.status_code == 503 and error_of(late)["code"] == "timeout"

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(settings.models[vae_gen.DEFAULT_MODEL], "images", broken)
    fault = client.post("/v1/generate", json={"n": 1})
    assert fault.status_code == 500 and error_of(fault) == {"code": "internal", "message": "the server failed; its log says why"}


def test_serving_beyond_this_machine_without_a_key_is_refused(capsys, monkeypatch):
    monkeypatch.delenv("VAE_GEN_API_KEY", raising=False)
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--host 0.0.0.0: serving beyond this machine needs an API key" in err


def test_the_openapi_document_describes_every_endpoint(client):
    paths = json.loads(client.get("/openapi.json").content)["paths"]
    assert {"/healthz", "/readyz", "/v1/models", "/v1/models/{name}", "/v1/models/{name}/images/{seed}/{index}.png",
            "/v1/models/{name}/latents/{seed}/{index}", "/v1/models/{name}/activity", "/v1/generate", "/v1/decode",
            "/v1/reconstruct"} <= set(paths)  # fmt: skip


def test_a_real_server_process_answers_and_shuts_down_gracefully_on_sigterm(tmp_path):
    import signal
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "vae_gen", "serve", "--port", str(port), "--model", DENSE2],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
                    assert json.loads(response.read())["ready"] is True
                    break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, process.stderr.read().decode()
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models/{DENSE2}/images/0/0.png") as response:
            assert response.read() == png_bytes(vae_gen.load(DENSE2).generate(1, 0)[0])
    finally:
        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=20)  # uvicorn finishes open requests, then exits
    stderr = process.stderr.read().decode()
    # uvicorn re-raises the signal once it has shut down, so the exit status says SIGTERM, as for other servers.
    assert status == 130 and stderr.rstrip().endswith("vae-gen serve: interrupted"), stderr  # as Ctrl-C: docs/cli.md


CONDITIONAL = Path(__file__).parent / "fixtures" / "tiny-conditional"


@pytest.fixture(scope="module")
def conditional_client() -> TestClient:
    settings = make_settings()
    tiny = vae_gen.load(CONDITIONAL)
    settings.models[tiny.name] = tiny
    return TestClient(server.create_app(settings))


def test_a_conditional_model_serves_the_cli_images_of_each_class(conditional_client, tmp_path):
    client, name = conditional_client, "tiny-conditional"
    listed = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert listed[name]["classes"] == ["circle", "square", "T-shirt/top"]
    argv = ["sample", "--model", str(CONDITIONAL), "-n", "40", "--seed", "3", "--class", "all", "--out", str(tmp_path / "s")]
    assert main(argv) == 0
    one = client.get(f"/v1/models/{name}/images/3/35.png?class=all")
    assert one.status_code == 200 and one.content == (tmp_path / "s" / "000035.png").read_bytes()
    square = client.get(f"/v1/models/{name}/images/3/35.png", params={"class": "square"})
    assert square.headers["ETag"] != one.headers["ETag"] and square.content != one.content
    assert square.content == client.get(f"/v1/models/{name}/images/3/35.png?class=1").content
    body = {"model": name, "n": 10, "seed": 3, "start": 30, "class": "all", "format": "npy"}
    images = np.load(io.BytesIO(client.post("/v1/generate", json=body).content))
    assert np.array_equal(images, vae_gen.load(CONDITIONAL).generate(10, 3, start=30, label="all"))
    blend = client.post("/v1/generate", json=body | {"class": "circle:0.5,square:0.5"})
    assert np.array_equal(np.load(io.BytesIO(blend.content)),
                          vae_gen.load(CONDITIONAL).generate(10, 3, start=30, label={"circle": 0.5, "square": 0.5}))  # fmt: skip
    z = vae_gen.load(CONDITIONAL).latents(2, seed=1)
    decoded = client.post("/v1/decode", json={"model": name, "latents": z.tolist(), "class": "T-shirt/top", "format": "npy"})
    assert np.array_equal(np.load(io.BytesIO(decoded.content)), vae_gen.load(CONDITIONAL).decode_uint8(z, label=2))


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/v1/generate", {}, "is class-conditional: give class one of circle, square, T-shirt/top"),
        ("/v1/generate", {"class": "triangle"}, "unknown class 'triangle' for model 'tiny-conditional'; classes: circle"),
        ("/v1/generate", {"class": "5"}, "class index 5 is out of range"),
        ("/v1/generate", {"class": "circle:0.7,square:0.7"}, "blend weights must sum to 1, got 1.4"),
        ("/v1/decode", {"latents": [[0.0, 0.0, 0.0]]}, "is class-conditional"),
    ],
)
def test_a_conditional_model_refuses_a_missing_or_bad_class_with_400(conditional_client, path, body, message):
    response = conditional_client.post(path, json={"model": "tiny-conditional"} | body)
    assert response.status_code == 400 and message in error_of(response)["message"], response.json()
    one = conditional_client.get("/v1/models/tiny-conditional/images/0/0.png?class=triangle")
    assert one.status_code == 400 and "unknown class 'triangle'" in error_of(one)["message"]


def test_reconstruct_takes_the_class_and_inverts_as_the_cli_does(conditional_client, tmp_path):
    picture = tmp_path / "drawing.png"
    Image.new("L", (8, 8), 230).save(picture)  # dark-on-light: auto inverts it, as vae-gen reconstruct does
    response = conditional_client.post("/v1/reconstruct", files={"image": ("d.png", picture.read_bytes(), "image/png")},
                                       data={"model": "tiny-conditional", "class": "square"})  # fmt: skip
    argv = ["reconstruct", str(picture), "--model", str(CONDITIONAL), "--class", "square", "--out", str(tmp_path / "r.png")]
    assert response.status_code == 200 and main(argv) == 0
    assert response.content == (tmp_path / "r.png").read_bytes()
    missing = conditional_client.post("/v1/reconstruct", files={"image": ("d.png", picture.read_bytes(), "image/png")},
                                      data={"model": "tiny-conditional"})  # fmt: skip
    assert missing.status_code == 400 and "is class-conditional" in error_of(missing)["message"]


def test_guidance_serves_the_cli_images_and_is_refused_where_it_does_not_apply(conditional_client, tmp_path):
    client, name = conditional_client, "tiny-conditional"
    argv = ["sample", "--model", str(CONDITIONAL), "-n", "40", "--seed", "3", "--class", "all", "--guidance", "1.5",
            "--out", str(tmp_path / "s")]  # fmt: skip
    assert main(argv) == 0
    guided = client.get(f"/v1/models/{name}/images/3/35.png", params={"class": "all", "guidance": 1.5})
    assert guided.status_code == 200 and guided.content == (tmp_path / "s" / "000035.png").read_bytes()
    plain = client.get(f"/v1/models/{name}/images/3/35.png", params={"class": "all"})
    assert plain.headers["ETag"] != guided.headers["ETag"] and plain.content != guided.content
    body = {"model": name, "n": 10, "seed": 3, "start": 30, "class": "all", "guidance": 1.5, "format": "npy"}
    images = np.load(io.BytesIO(client.post("/v1/generate", json=body).content))
    assert np.array_equal(images, vae_gen.load(CONDITIONAL).generate(10, 3, start=30, label="all", guidance=1.5))
    z = vae_gen.load(CONDITIONAL).latents(2, seed=1)
    decoded = client.post("/v1/decode", json={"model": name, "latents": z.tolist(), "class": 1, "guidance": 2, "format": "npy"})
    assert np.array_equal(np.load(io.BytesIO(decoded.content)), vae_gen.load(CONDITIONAL).decode_uint8(z, label=1, guidance=2))
    for bad in (-1, True, "2", None, 11):
        refused = client.post("/v1/generate", json=body | {"guidance": bad})
        assert refused.status_code == 422 and "guidance" in json.dumps(refused.json()), bad
    for bad in ("nan", "-1", "x"):
        refused = client.get(f"/v1/models/{name}/images/3/35.png", params={"class": "all", "guidance": bad})
        assert refused.status_code == 422, bad
    for zero in ("0", "-0.0"):  # the decoder's own output: the same bytes and ETag as no guidance
        same = client.get(f"/v1/models/{name}/images/3/35.png", params={"class": "all", "guidance": zero})
        assert same.headers["ETag"] == plain.headers["ETag"] and same.content == plain.content
    unconditional = client.post("/v1/generate", json={"n": 2, "guidance": 1})
    assert unconditional.status_code == 400
    assert "needs a class-conditional model" in error_of(unconditional)["message"]
