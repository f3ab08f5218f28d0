"""The web page of `vae-gen serve`, driven in headless Chromium (Debian's chromium and chromium-driver)."""

from __future__ import annotations

import base64
import os
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("selenium")

from conftest import DENSE2

import vae_gen

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()), reason="needs Debian's chromium and chromium-driver"
)


@pytest.fixture(scope="module")
def live_server():
    """`vae-gen serve`'s app on uvicorn, in a thread, on a free local port."""
    import uvicorn

    from vae_gen.server import ServerSettings, create_app

    models = {name: vae_gen.load(name) for name in (vae_gen.DEFAULT_MODEL, DENSE2)}
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
    wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#model option")) == 2)
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
