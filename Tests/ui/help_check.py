"""Runs every example on the admin UI's help page against a running test gateway (HelpPageTests).

Reads the page as an admin would see it, takes each <pre data-example> as written there (HTML
unescaped, nothing substituted), and runs it: the shell ones with bash, the Python ones with this
interpreter (the SDK virtual environment). The key made by the page's own admin API example is the
one the client examples use. Open WebUI is not run: its connection URLs are checked with the calls
Open WebUI makes when a connection is added (GET <url>/models, GET <url>/api/tags and /api/version).

Environment: ADMIN_URL, ADMIN_PASSWORD, HELP_BIN_DIR (the tollgate executable's folder),
DATABASE_URL (the gateway's, for the CLI example).
"""
import html.parser
import json
import os
import subprocess
import sys
import urllib.request

admin_url = os.environ["ADMIN_URL"]
password = os.environ["ADMIN_PASSWORD"]
EXPECTED = {"cli-key", "api-key", "curl", "curl-ollama", "openai", "anthropic", "ollama", "langchain"}
CHECKS = {"openai-connection", "ollama-connection"}


class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.examples, self.checks = {}, {}
        self.current = None  # (kind, name, lang)
        self.text = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "pre" and "data-example" in a:
            self.current, self.text = ("example", a["data-example"], a.get("data-lang")), []
        elif tag == "code" and "data-check" in a:
            self.current, self.text = ("check", a["data-check"], None), []

    def handle_endtag(self, tag):
        if self.current and ((tag == "pre" and self.current[0] == "example") or (tag == "code" and self.current[0] == "check")):
            kind, name, lang = self.current
            text = "".join(self.text)
            if kind == "example":
                self.examples[name] = (lang, text)
            else:
                self.checks[name] = text
            self.current = None

    def handle_data(self, data):
        if self.current:
            self.text.append(data)


def get(url, headers):
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read().decode()


def run(name, lang, code, env):
    command = ["bash", "-c", code] if lang == "sh" else [sys.executable, "-c", code]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise SystemExit(f"example {name} failed ({result.returncode}):\n{code}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}")
    return result.stdout


status, body = get(admin_url + "/ui/help", {"Authorization": "Bearer " + password})
assert status == 200, status
page = Page()
page.feed(body)
missing = EXPECTED - set(page.examples)
assert not missing, f"examples missing from the help page: {sorted(missing)}"
assert set(page.checks) == CHECKS, page.checks
assert password not in body, "the help page shows the admin password"

env = dict(os.environ)
env.pop("GATEWAY_API_KEY", None)
env.pop("HELP_BIN_DIR", None)
env["ADMIN_PASSWORD"] = password
env["PATH"] = os.environ["HELP_BIN_DIR"] + os.pathsep + os.environ.get("PATH", "")

# 1. Keys, both ways the page shows.
out = run("cli-key", *page.examples["cli-key"], env)
assert "tg-" in out, out
print("ok cli-key", flush=True)
created = json.loads(run("api-key", *page.examples["api-key"], env))
key = created["key"]
assert key.startswith("tg-"), created
print("ok api-key", flush=True)
env["GATEWAY_API_KEY"] = key

# 2. Every client example, with that key.
for name in sorted(set(page.examples) - {"cli-key", "api-key"}):
    lang, code = page.examples[name]
    out = run(name, lang, code, env).strip()
    assert out, f"example {name} printed nothing"
    if name.startswith("curl"):
        answer = json.loads(out)
        assert "error" not in answer, answer
    print(f"ok {name}: {out[:60]!r}", flush=True)

# 3. Open WebUI's connection checks on the URLs the page gives.
auth = {"Authorization": "Bearer " + key}
status, body = get(page.checks["openai-connection"] + "/models", auth)
assert status == 200 and json.loads(body)["data"], body
status, body = get(page.checks["ollama-connection"] + "/api/tags", auth)
assert status == 200 and json.loads(body)["models"], body
status, body = get(page.checks["ollama-connection"] + "/api/version", auth)
assert status == 200 and "version" in json.loads(body), body
print("ok open-webui connections", flush=True)
print("all examples ran", flush=True)
