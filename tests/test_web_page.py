"""The web page of `vae-gen serve`, driven in headless Chromium (Debian's chromium and chromium-driver)."""

from __future__ import annotations

import base64
import io
import os
import socket
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("selenium")

from conftest import DENSE2

import vae_gen

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
CONDITIONAL = Path(__file__).parent / "fixtures" / "tiny-conditional"
pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()), reason="needs Debian's chromium and chromium-driver"
)


@pytest.fixture(scope="module")
def live_server():
    """`vae-gen serve`'s app on uvicorn, in a thread, on a free local port."""
    import uvicorn

    from vae_gen.serve import ServerSettings, create_app

    models = {name: vae_gen.load(name) for name in (vae_gen.DEFAULT_MODEL, DENSE2)}
    models[CONDITIONAL.name] = vae_gen.load(CONDITIONAL)  # a class-conditional model: the class control shows
    app = create_app(ServerSettings(models, vae_gen.DEFAULT_MODEL, selftests={name: True for name in models}))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not try to download anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tmp_path_factory.mktemp("chromium")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def test_the_page_generates_the_apis_images_and_shows_errors(live_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser.get(live_server + "/")
    wait = WebDriverWait(browser, 30)
    wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#model option")) == 3)
    assert not browser.find_element(By.ID, "class-field").is_displayed()  # these models have no classes
    Select(browser.find_element(By.ID, "model")).select_by_value(DENSE2)
    for field, value in (("count", "6"), ("seed", "3"), ("start", "10")):
        browser.find_element(By.ID, field).clear()
        browser.find_element(By.ID, field).send_keys(value)
    browser.find_element(By.ID, "generate").click()
    wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#images img")) == 6)
    wait.until(lambda b: "6 images" in b.find_element(By.ID, "status").text)
    first = browser.find_elements(By.CSS_SELECTOR, "#images img")[0]
    assert browser.execute_script("return arguments[0].naturalWidth", first) == 28
    shown = base64.b64decode(first.get_attribute("src").split(",", 1)[1])
    with urllib.request.urlopen(f"{live_server}/v1/models/{DENSE2}/images/3/10.png") as response:
        assert shown == response.read()  # the page shows the API's images, byte for byte
    assert not browser.find_element(By.ID, "download").get_attribute("hidden")

    browser.find_element(By.ID, "count").clear()
    browser.find_element(By.ID, "count").send_keys("5000")
    browser.execute_script("document.getElementById('count').removeAttribute('max')")  # past the form's own check
    browser.find_element(By.ID, "generate").click()
    wait.until(lambda b: "at most 1024 images per request" in b.find_element(By.ID, "status").text)
    assert browser.find_element(By.ID, "status").get_attribute("class") == "error"


def shown_png(img) -> bytes:
    """The PNG bytes an <img> with a data: URL shows."""
    return base64.b64decode(img.get_attribute("src").split(",", 1)[1])


def open_page(browser, live_server):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(live_server + "/")
    wait = WebDriverWait(browser, 30)
    wait.until(lambda b: "ready" in b.find_element("id", "status").text)
    return wait


def generate(browser, wait, **fields):
    from selenium.webdriver.common.by import By

    for field, value in fields.items():
        browser.find_element(By.ID, field).clear()
        browser.find_element(By.ID, field).send_keys(str(value))
    browser.find_element(By.ID, "generate").click()
    done = f"{fields.get('count', 16)} images, seed {fields.get('seed', 0)}."
    wait.until(lambda b: b.find_element(By.ID, "status").text == done)
    return [shown_png(img) for img in browser.find_elements(By.CSS_SELECTOR, "#images img")]


def test_changing_the_seed_changes_the_images(live_server, browser):
    wait = open_page(browser, live_server)
    first = generate(browser, wait, count=4, seed=3)
    second = generate(browser, wait, count=4, seed=4)
    assert len(first) == len(second) == 4 and all(a != b for a, b in zip(first, second, strict=True))
    assert np.array_equal([np.asarray(Image.open(io.BytesIO(png))) for png in second], vae_gen.load().generate(4, 4))


def test_a_slider_moves_the_most_active_dimension_and_the_image_is_decoded_again(live_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from vae_gen.output.images import png_bytes
    from vae_gen.sampling.latent_activity import latent_activity

    wait = open_page(browser, live_server)
    generate(browser, wait, count=4, seed=5, start=2)  # the sliders start from the grid's first image: 2 of seed 5
    wait.until(lambda b: b.find_element(By.ID, "explore-status").text.startswith("Image 2 of seed 5: 8 of 32"))
    generator = vae_gen.load()
    order = latent_activity(generator).order
    sliders = browser.find_elements(By.CSS_SELECTOR, "#sliders input[type=range]")
    assert [int(s.get_attribute("data-dim")) for s in sliders] == list(order[:8])  # most active first
    image = browser.find_element(By.ID, "explore-image")
    z = generator.latents(1, 5, start=2)
    wait.until(lambda b: image.get_attribute("src").startswith("data:"))
    assert shown_png(image) == png_bytes(generator.decode_uint8(z)[0])
    before = image.get_attribute("src")
    sliders[0].send_keys(Keys.END)  # the most active dimension to the slider's end (4, or further if it started there)
    wait.until(lambda b: image.get_attribute("src") != before)
    z[0, order[0]] = float(sliders[0].get_attribute("max"))
    wait.until(lambda b: shown_png(image) == png_bytes(generator.decode_uint8(z)[0]))
    browser.find_element(By.ID, "explore-reset").click()
    wait.until(lambda b: image.get_attribute("src") == before)


def test_the_interpolation_strip_runs_from_one_seeds_image_to_the_others(live_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    wait = open_page(browser, live_server)
    Select(browser.find_element(By.ID, "model")).select_by_value(DENSE2)
    wait.until(lambda b: b.find_element(By.ID, "strip-status").text == f"10 frames of {DENSE2} from seed 3 to seed 7, spherical.")
    frames = browser.find_elements(By.CSS_SELECTOR, "#strip img")
    assert len(frames) == 10 and all(browser.execute_script("return arguments[0].naturalWidth", f) == 28 for f in frames)
    generator = vae_gen.load(DENSE2)
    pixels = [np.asarray(Image.open(io.BytesIO(shown_png(f))), np.int16) for f in frames]
    for shown, seed in ((pixels[0], 3), (pixels[-1], 7)):  # the ends are the seeds' own images (to batching's rounding)
        assert np.abs(shown - generator.decode_uint8(generator.latents(1, seed))[0]).max() <= 1
    assert np.abs(pixels[4] - pixels[0]).max() > 50 and np.abs(pixels[4] - pixels[-1]).max() > 50
    browser.find_element(By.ID, "frames").clear()
    browser.find_element(By.ID, "frames").send_keys("6")
    Select(browser.find_element(By.ID, "method")).select_by_value("linear")
    browser.find_element(By.ID, "interpolate").click()
    wait.until(lambda b: b.find_element(By.ID, "strip-status").text == f"6 frames of {DENSE2} from seed 3 to seed 7, linear.")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#strip img")) == 6


def test_clicking_an_image_enlarges_it_and_offers_its_png(live_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    wait = open_page(browser, live_server)
    Select(browser.find_element(By.ID, "model")).select_by_value(DENSE2)
    shown = generate(browser, wait, count=3, seed=8, start=30)
    viewer = browser.find_element(By.ID, "viewer")
    assert not viewer.is_displayed()
    browser.find_elements(By.CSS_SELECTOR, "#images img")[1].click()
    wait.until(lambda b: viewer.get_attribute("open") is not None and viewer.is_displayed())
    big = browser.find_element(By.ID, "viewer-image")
    assert shown_png(big) == shown[1] and big.size["width"] >= 200  # 28 pixels, shown large
    assert browser.execute_script("return getComputedStyle(arguments[0]).imageRendering", big) == "pixelated"
    link = browser.find_element(By.ID, "viewer-download")
    assert link.get_attribute("download") == "seed8-000031.png"
    assert link.get_attribute("href") == f"{live_server}/v1/models/{DENSE2}/images/8/31.png?temperature=1"
    with urllib.request.urlopen(link.get_attribute("href")) as response:
        assert response.read() == shown[1]
    browser.find_element(By.ID, "viewer-explore").click()  # its latent goes to the sliders
    wait.until(lambda b: not viewer.is_displayed())
    wait.until(lambda b: b.find_element(By.ID, "explore-status").text.startswith("Image 31 of seed 8: 2 of 2"))
    browser.find_element(By.CSS_SELECTOR, "#strip img").click()  # a decoded frame: its download is the bytes shown
    wait.until(lambda b: viewer.is_displayed())
    assert link.get_attribute("href").startswith("data:image/png;base64,")
    browser.find_element(By.ID, "viewer-close").click()
    wait.until(lambda b: not viewer.is_displayed())


def test_the_class_control_appears_for_a_conditional_model_and_picks_the_class(live_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    wait = open_page(browser, live_server)
    assert not browser.find_element(By.ID, "class-field").is_displayed()  # the default model is unconditional
    Select(browser.find_element(By.ID, "model")).select_by_value(CONDITIONAL.name)
    wait.until(lambda b: b.find_element(By.ID, "class-field").is_displayed())
    choices = [option.get_attribute("value") for option in browser.find_elements(By.CSS_SELECTOR, "#class option")]
    assert choices == ["circle", "square", "T-shirt/top"]
    Select(browser.find_element(By.ID, "class")).select_by_value("T-shirt/top")
    shown = generate(browser, wait, count=3, seed=2)
    expected = vae_gen.load(CONDITIONAL).generate(3, 2, label="T-shirt/top")
    assert np.array_equal([np.asarray(Image.open(io.BytesIO(png))) for png in shown], expected)
    assert browser.find_element(By.ID, "guidance-field").is_displayed()  # beside the class, 0 by default
    guidance = browser.find_element(By.ID, "guidance")
    guidance.clear()
    guidance.send_keys("2")
    shown = generate(browser, wait, count=3, seed=2)
    expected = vae_gen.load(CONDITIONAL).generate(3, 2, label="T-shirt/top", guidance=2)
    assert np.array_equal([np.asarray(Image.open(io.BytesIO(png))) for png in shown], expected)
    link = browser.find_element(By.CSS_SELECTOR, "#images a").get_attribute("href")
    assert "guidance=2" in link and "class=T-shirt%2Ftop" in link  # the image's own URL asks for the same
    Select(browser.find_element(By.ID, "model")).select_by_value(DENSE2)
    wait.until(lambda b: not b.find_element(By.ID, "class-field").is_displayed())
    assert not browser.find_element(By.ID, "guidance-field").is_displayed()
