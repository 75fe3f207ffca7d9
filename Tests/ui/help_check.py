"""Runs every example on the admin UI's help page against a running test gateway (HelpPageTests).

Reads the page as an admin would see it, takes each <pre data-example> as written there (HTML
unescaped, nothing substituted), and runs it: the shell ones with bash, the Python ones with this
interpreter (the SDK virtual environment). The key made by the page's own admin API example is the
one the client examples use. Open WebUI is not run: its connection URLs are checked with the calls
Open WebUI makes when a connection is added (GET <url>/models, GET <url>/api/tags and /api/version),
its environment block is read as Open WebUI reads it (the key from OPENAI_API_KEYS and from
OLLAMA_API_CONFIGS' JSON), and a chat is sent with the end-user headers
ENABLE_FORWARD_USER_INFO_HEADERS makes it send, with the key the page's CLI example made for it.

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
EXPECTED = {"cli-key", "api-key", "curl", "curl-ollama", "openai", "anthropic", "ollama", "langchain", "cli-open-webui-key"}
CHECKS = {"openai-connection", "ollama-connection", "open-webui-env"}


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
        elif tag in ("code", "pre") and "data-check" in a:
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


def get(url, headers, body=None):
    request = urllib.request.Request(url, headers=headers, data=body)
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
for name in sorted(set(page.examples) - {"cli-key", "api-key", "cli-open-webui-key"}):
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

# 4. Open WebUI's own key (trusting its end-user headers), made as the page says, and its environment.
out = run("cli-open-webui-key", *page.examples["cli-open-webui-key"], env)
webui_key = next(word for word in out.split() if word.startswith("tg-"))
print("ok cli-open-webui-key", flush=True)
variables = dict(line.split("=", 1) for line in page.checks["open-webui-env"].strip().splitlines())
assert variables["ENABLE_PERSISTENT_CONFIG"] == "false" and variables["ENABLE_FORWARD_USER_INFO_HEADERS"] == "true", variables
assert variables["OPENAI_API_BASE_URLS"] == page.checks["openai-connection"], variables
assert variables["OLLAMA_BASE_URLS"] == page.checks["ollama-connection"], variables
variables = {name: value.replace("tg-…", webui_key) for name, value in variables.items()}
openai_url, openai_key = variables["OPENAI_API_BASE_URLS"].split(";")[0], variables["OPENAI_API_KEYS"].split(";")[0]
ollama_url = variables["OLLAMA_BASE_URLS"].split(";")[0]
ollama_key = json.loads(variables["OLLAMA_API_CONFIGS"])["0"]["key"]
status, body = get(openai_url + "/models", {"Authorization": "Bearer " + openai_key})
model = json.loads(body)["data"][0]["id"]
status, body = get(ollama_url + "/api/tags", {"Authorization": "Bearer " + ollama_key})
assert status == 200 and json.loads(body)["models"], body
print("ok open-webui environment", flush=True)

# 5. A chat as Open WebUI sends it for one of its users: the gateway counts it for that user.
user_headers = {
    "Authorization": "Bearer " + ollama_key, "Content-Type": "application/json",
    "X-OpenWebUI-User-Id": "help-check-user", "X-OpenWebUI-User-Name": "Help Check",
    "X-OpenWebUI-User-Email": "help@example.org", "X-OpenWebUI-User-Role": "user",
}
chat = json.dumps({"model": model, "stream": False, "messages": [{"role": "user", "content": "Hello"}]}).encode()
status, body = get(ollama_url + "/api/chat", user_headers, chat)
assert status == 200, body
status, body = get(admin_url + "/api/users", {"Authorization": "Bearer " + password})
users = json.loads(body)
users = users.get("users", users.get("data", [])) if isinstance(users, dict) else users
assert any(u.get("external_id") == "openwebui:help-check-user" for u in users), users
print("ok open-webui end user", flush=True)
print("all examples ran", flush=True)
