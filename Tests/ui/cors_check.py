"""A browser's view of CORS on the proxy: a page on an allowed origin calls the OpenAI route with a
key (which makes Chromium send a preflight first) and reads the answer and an exposed header; the same
page on an origin that is not allowed is stopped by the browser.

Environment: TG_PROXY (proxy URL), TG_KEY (a key), TG_ALLOWED_PORT and TG_OTHER_PORT (free ports for
the two page origins, http://127.0.0.1:PORT; only the first is in ALLOWED_ORIGINS). Prints "ok <step>";
a failed check raises (exit status 1).
"""
import http.server
import json
import os
import threading

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

PROXY = os.environ["TG_PROXY"].rstrip("/")
KEY = os.environ["TG_KEY"]
PAGE = """<!doctype html><html><head><title>pending</title></head><body><script>
fetch(%s + "/v1/chat/completions", {method: "POST",
  headers: {"Authorization": "Bearer " + %s, "Content-Type": "application/json", "X-Stainless-Lang": "js"},
  body: JSON.stringify({model: "llama3.2", messages: [{role: "user", content: "hi"}]})})
 .then(async r => { const j = await r.json(); document.title = "ok:" + r.status + ":" + (r.headers.get("x-request-id") ? "id" : "noid") + ":" + j.object; })
 .catch(e => { document.title = "error:" + e.name; });
</script></body></html>""" % (json.dumps(PROXY), json.dumps(KEY))


class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


servers = []
for port in (int(os.environ["TG_ALLOWED_PORT"]), int(os.environ["TG_OTHER_PORT"])):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    servers.append(server)

options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]:
    options.add_argument(arg)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
try:
    def title_after(url):
        driver.get(url)
        WebDriverWait(driver, 30).until(lambda d: d.title != "pending")
        return driver.title

    title = title_after("http://127.0.0.1:%s/" % os.environ["TG_ALLOWED_PORT"])
    assert title == "ok:200:id:chat.completion", title
    print("ok allowed origin: preflight passed, answer and exposed header read", flush=True)

    title = title_after("http://127.0.0.1:%s/" % os.environ["TG_OTHER_PORT"])
    assert title == "error:TypeError", title
    print("ok other origin: the browser refused to send the request", flush=True)
finally:
    driver.quit()
    for server in servers:
        server.shutdown()
