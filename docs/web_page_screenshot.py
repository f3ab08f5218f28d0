"""Take docs/web-page.png: `vae-gen serve`'s web page in headless Chromium, after one Generate.

Needs the serve and dev extras (pip install ".[serve,dev]") and Debian's chromium and chromium-driver;
nothing is downloaded. Run from anywhere: python docs/web_page_screenshot.py [OUT.png]
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import vae_gen
from vae_gen.serve import ServerSettings, create_app

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WINDOW = (1280, 1100)


def serve() -> tuple[uvicorn.Server, str]:
    models = {name: vae_gen.load(name) for name in (vae_gen.DEFAULT_MODEL, "fashion-mnist-dense2")}
    app = create_app(ServerSettings(models, vae_gen.DEFAULT_MODEL, selftests={name: True for name in models}))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise SystemExit("the server did not start in 30 s")
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{sock.getsockname()[1]}"


def main(out: Path) -> None:
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not download anything
    server, base = serve()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    with tempfile.TemporaryDirectory() as profile:
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}",
                     f"--window-size={WINDOW[0]},{WINDOW[1]}"):  # fmt: skip
            options.add_argument(flag)
        browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            browser.get(base + "/")
            wait = WebDriverWait(browser, 60)
            wait.until(lambda b: "ready" in b.find_element(By.ID, "status").text)
            count = browser.find_element(By.ID, "count")
            count.clear()
            count.send_keys("26")
            browser.find_element(By.ID, "generate").click()
            wait.until(lambda b: "26 images" in b.find_element(By.ID, "status").text)
            wait.until(lambda b: "latent dimensions" in b.find_element(By.ID, "explore-status").text)
            wait.until(lambda b: "frames of" in b.find_element(By.ID, "strip-status").text)
            time.sleep(0.5)  # the last decoded images paint
            browser.save_screenshot(str(out))
        finally:
            browser.quit()
    server.should_exit = True


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "web-page.png")
