"""The official openai, anthropic and ollama SDKs against a Tollgate in front of the mock Ollama.

Run by SDKTests.swift, which starts the gateway and passes:
  TG_URL        the proxy's base URL
  TG_KEY        an ordinary key
  TG_QUOTA_KEY  a key with a daily quota of one request
  TG_LIMITED_KEY a key allowed only the model "llama3.2"
  TG_BACKEND    ollama (default), openai or anthropic: which kind of mock serves "llama3.2"
Prints one line per check and, last, `inference N` (requests that reached the upstream).
The mock answers "tok0 tok1 ... " with prompt_eval_count 26 and eval_count = tokens sent,
calls the first offered tool with {"city":"Tokyo"}, and echoes a tool result as "tool said: ...".
"""
import base64
import json
import os
import sys

import anthropic
import ollama
import openai

URL = os.environ["TG_URL"]
KEY = os.environ["TG_KEY"]
QUOTA_KEY = os.environ["TG_QUOTA_KEY"]
LIMITED_KEY = os.environ["TG_LIMITED_KEY"]
BACKEND = os.environ.get("TG_BACKEND", "ollama")
CLOUD = BACKEND != "ollama"
MODEL_ID = "llama3.2" if CLOUD else "llama3.2:latest"  # as the model lists name it
FIVE = "tok0 tok1 tok2 tok3 tok4 "
# A 1x1 PNG.
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)).decode()
WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
inference = 0


def check(name, condition, detail=""):
    if not condition:
        raise AssertionError(f"{name}: {detail}")
    print(f"ok {name}")


def expect_error(name, cls, fn):
    global inference
    try:
        fn()
    except cls as e:
        print(f"ok {name} ({type(e).__name__} {getattr(e, 'status_code', '')})")
        return e
    raise AssertionError(f"{name}: expected {cls.__name__}")


def run_openai():
    global inference
    client = openai.OpenAI(base_url=URL + "/v1", api_key=KEY, max_retries=0)
    ids = [m.id for m in client.models.list().data]
    check("openai models.list", MODEL_ID in ids, ids)
    check("openai models.retrieve", client.models.retrieve(MODEL_ID).id == MODEL_ID)

    r = client.chat.completions.create(model="llama3.2", messages=[{"role": "user", "content": "hi"}], max_tokens=50)
    inference += 1
    check("openai chat", r.choices[0].message.content == FIVE and r.choices[0].finish_reason == "stop", r)
    check("openai chat usage", (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (26, 5, 31), r.usage)

    text, usage = "", None
    for chunk in client.chat.completions.create(
        model="llama3.2", messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        stream=True, stream_options={"include_usage": True}, max_completion_tokens=50, temperature=0.2, top_p=0.9, seed=7, stop=["END"],
    ):
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage:
            usage = chunk.usage
    inference += 1
    check("openai chat stream", text == FIVE, text)
    check("openai chat stream usage", usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (26, 5), usage)

    # A full tool round trip, not streamed.
    messages = [{"role": "user", "content": "weather in Tokyo?"}]
    tools = [{"type": "function", "function": WEATHER}]
    r = client.chat.completions.create(model="llama3.2", messages=messages, tools=tools)
    inference += 1
    call = r.choices[0].message.tool_calls[0]
    check("openai tool call", r.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
          and json.loads(call.function.arguments) == {"city": "Tokyo"} and call.id, r)
    messages += [r.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "18C sunny"}]
    r = client.chat.completions.create(model="llama3.2", messages=messages, tools=tools)
    inference += 1
    check("openai tool result", r.choices[0].message.content.startswith("tool said: 18C sunny"), r.choices[0].message.content)

    # The same call streamed: tool call deltas with index, id and JSON-string arguments.
    calls = {}
    finish = None
    for chunk in client.chat.completions.create(model="llama3.2", messages=messages[:1], tools=tools, stream=True):
        for d in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            entry = calls.setdefault(d.index, {"id": None, "name": "", "arguments": ""})
            entry["id"] = d.id or entry["id"]
            entry["name"] += d.function.name or ""
            entry["arguments"] += d.function.arguments or ""
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
    inference += 1
    check("openai tool call stream", finish == "tool_calls" and calls[0]["name"] == "get_weather"
          and json.loads(calls[0]["arguments"]) == {"city": "Tokyo"} and calls[0]["id"], calls)

    r = client.chat.completions.create(model="llama3.2", messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + PNG}},
    ]}])
    inference += 1
    check("openai image", r.choices[0].message.content == FIVE)

    r = client.chat.completions.create(model="llama3.2", messages=[{"role": "user", "content": "json please"}],
                                       response_format={"type": "json_object"}, reasoning_effort="high")
    inference += 1
    # Translated from Ollama: `reasoning` (as Ollama's own shim); relayed from an OpenAI-compatible provider: its own field.
    m = r.choices[0].message
    check("openai json mode + reasoning", (getattr(m, "reasoning", None) or getattr(m, "reasoning_content", None)) == "thinking it over", m)

    c = client.completions.create(model="llama3.2", prompt="Once upon", max_tokens=3)
    inference += 1
    check("openai completions", c.choices[0].text == "tok0 tok1 tok2 " and c.choices[0].finish_reason == "length", c)

    if BACKEND == "anthropic":
        expect_error("openai embeddings (anthropic has none)", openai.BadRequestError,
                     lambda: client.embeddings.create(model="llama3.2", input=["a"]))
    else:
        e = client.embeddings.create(model="nomic-embed-text", input=["a", "b"])  # the SDK asks for base64
        inference += 1
        check("openai embeddings", len(e.data) == 2 and [round(x, 5) for x in e.data[1].embedding] == [0.1, -0.2, 0.3], e.data)
        check("openai embeddings usage", e.usage.prompt_tokens == 26, e.usage)
        e = client.embeddings.create(model="nomic-embed-text", input="a", encoding_format="float")
        inference += 1
        check("openai embeddings float", [round(x, 5) for x in e.data[0].embedding] == [0.1, -0.2, 0.3])

    expect_error("openai bad key", openai.AuthenticationError,
                 lambda: openai.OpenAI(base_url=URL + "/v1", api_key="tg-nope", max_retries=0).models.list())
    missing = expect_error("openai unknown model", openai.NotFoundError,
                           lambda: client.chat.completions.create(model="missing-model", messages=[{"role": "user", "content": "x"}]))
    inference += 1
    check("openai unknown model message", "not found" in str(missing), missing)
    expect_error("openai model not allowed", openai.PermissionDeniedError, lambda: openai.OpenAI(
        base_url=URL + "/v1", api_key=LIMITED_KEY, max_retries=0).chat.completions.create(model="qwen3", messages=[{"role": "user", "content": "x"}]))
    limited_ids = [m.id for m in openai.OpenAI(base_url=URL + "/v1", api_key=LIMITED_KEY, max_retries=0).models.list().data]
    check("openai models filtered by key", limited_ids == [MODEL_ID], limited_ids)
    expect_error("openai bad request", openai.BadRequestError,
                 lambda: client.chat.completions.create(model="llama3.2", messages="not a list"))


def run_anthropic():
    global inference
    quota = anthropic.Anthropic(base_url=URL, api_key=QUOTA_KEY, max_retries=0)
    for name, client in [
        ("x-api-key", anthropic.Anthropic(base_url=URL, api_key=KEY, max_retries=0)),
        ("bearer", anthropic.Anthropic(base_url=URL, auth_token=KEY, max_retries=0)),
    ]:
        m = client.messages.create(model="llama3.2", max_tokens=50, system="be brief", messages=[{"role": "user", "content": "hi"}])
        inference += 1
        check(f"anthropic messages ({name})", m.content[0].type == "text" and m.content[0].text == FIVE and m.stop_reason == "end_turn", m)
        check(f"anthropic usage ({name})", (m.usage.input_tokens, m.usage.output_tokens) == (26, 5), m.usage)
    client = anthropic.Anthropic(base_url=URL, api_key=KEY, max_retries=0)

    with client.messages.stream(model="llama3.2", max_tokens=50, messages=[{"role": "user", "content": "hi"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    inference += 1
    check("anthropic stream", text == FIVE and final.stop_reason == "end_turn", text)
    check("anthropic stream usage", final.usage.output_tokens == 5 and final.usage.input_tokens == 26, final.usage)

    m = client.messages.create(model="llama3.2", max_tokens=3, messages=[{"role": "user", "content": "hi"}])
    inference += 1
    check("anthropic max_tokens", m.stop_reason == "max_tokens" and m.content[0].text == "tok0 tok1 tok2 ", m)

    tools = [{"name": WEATHER["name"], "description": WEATHER["description"], "input_schema": WEATHER["parameters"]}]
    messages = [{"role": "user", "content": "weather in Tokyo?"}]
    m = client.messages.create(model="llama3.2", max_tokens=100, tools=tools, messages=messages)
    inference += 1
    use = next(b for b in m.content if b.type == "tool_use")
    check("anthropic tool_use", m.stop_reason == "tool_use" and use.name == "get_weather" and use.input == {"city": "Tokyo"}, m)
    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in m.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "18C sunny"}]}]
    m = client.messages.create(model="llama3.2", max_tokens=100, tools=tools, messages=messages)
    inference += 1
    check("anthropic tool_result", m.content[0].text.startswith("tool said: 18C sunny"), m.content)

    with client.messages.stream(model="llama3.2", max_tokens=100, tools=tools, messages=messages[:1]) as stream:
        final = stream.get_final_message()
    inference += 1
    use = next(b for b in final.content if b.type == "tool_use")
    check("anthropic tool_use stream", final.stop_reason == "tool_use" and use.input == {"city": "Tokyo"}, final)

    m = client.messages.create(model="llama3.2", max_tokens=2000, thinking={"type": "enabled", "budget_tokens": 1024},
                               messages=[{"role": "user", "content": "think"}])
    inference += 1
    check("anthropic thinking", m.content[0].type == "thinking" and m.content[0].thinking == "thinking it over", m.content)
    with client.messages.stream(model="llama3.2", max_tokens=2000, thinking={"type": "enabled", "budget_tokens": 1024},
                                messages=[{"role": "user", "content": "think"}]) as stream:
        final = stream.get_final_message()
    inference += 1
    check("anthropic thinking stream", [b.type for b in final.content] == ["thinking", "text"] and final.content[1].text == FIVE, final.content)

    m = client.messages.create(model="llama3.2", max_tokens=50, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "text", "text": "what is this?"},
    ]}])
    inference += 1
    check("anthropic image", m.content[0].text == FIVE)

    n = client.messages.count_tokens(model="llama3.2", messages=[{"role": "user", "content": "hello there, how are you?"}])
    check("anthropic count_tokens", n.input_tokens > 0, n)

    expect_error("anthropic bad key", anthropic.AuthenticationError, lambda: anthropic.Anthropic(
        base_url=URL, api_key="tg-nope", max_retries=0).messages.create(model="llama3.2", max_tokens=5, messages=[{"role": "user", "content": "x"}]))
    expect_error("anthropic unknown model", anthropic.NotFoundError,
                 lambda: client.messages.create(model="missing-model", max_tokens=5, messages=[{"role": "user", "content": "x"}]))
    inference += 1
    expect_error("anthropic missing max_tokens", anthropic.BadRequestError, lambda: client.post(
        "/v1/messages", body={"model": "llama3.2", "messages": [{"role": "user", "content": "x"}]}, cast_to=object))
    quota.messages.create(model="llama3.2", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    inference += 1
    e = expect_error("anthropic over quota", anthropic.RateLimitError,
                     lambda: quota.messages.create(model="llama3.2", max_tokens=5, messages=[{"role": "user", "content": "x"}]))
    check("anthropic over quota headers", e.response.headers.get("retry-after") and e.response.headers.get("x-ratelimit-limit-requests") == "1",
          dict(e.response.headers))
    expect_error("openai over quota", openai.RateLimitError, lambda: openai.OpenAI(
        base_url=URL + "/v1", api_key=QUOTA_KEY, max_retries=0).chat.completions.create(model="llama3.2", messages=[{"role": "user", "content": "x"}]))


def run_ollama():
    global inference
    client = ollama.Client(host=URL, headers={"Authorization": f"Bearer {KEY}"})
    r = client.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}])
    inference += 1
    check("ollama chat", r.message.content == FIVE and r.eval_count == 5, r)
    text = "".join(part.message.content for part in client.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}], stream=True))
    inference += 1
    check("ollama chat stream", text == FIVE, text)
    r = client.chat(model="llama3.2", messages=[{"role": "user", "content": "weather?"}], tools=[{"type": "function", "function": WEATHER}])
    inference += 1
    check("ollama tool call", r.message.tool_calls[0].function.name == "get_weather" and r.message.tool_calls[0].function.arguments == {"city": "Tokyo"}, r)
    g = client.generate(model="llama3.2", prompt="Once upon")
    inference += 1
    check("ollama generate", g.response == FIVE)
    if BACKEND != "anthropic":
        e = client.embed(model="nomic-embed-text", input=["a", "b"])
        inference += 1
        check("ollama embed", len(e.embeddings) == 2)
    check("ollama list", MODEL_ID in [m.model for m in client.list().models])
    info = client.show("llama3.2").modelinfo
    check("ollama show", info.get("tollgate.context_length" if CLOUD else "llama.context_length") == 131072, info)
    expect_error("ollama bad key", ollama.ResponseError, lambda: ollama.Client(host=URL, headers={"Authorization": "Bearer tg-nope"}).list())


run_openai()
run_anthropic()
run_ollama()
print(f"inference {inference}")
