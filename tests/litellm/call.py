"""Calls LiteLLM once per case read from stdin, as the conformance test (tests/it/litellm.rs)
asks: {"cases": [{"name", "kwargs", "redirect"}], "proxy": {"model_list", "env", "cases":
[{"name", "model_name", "redirect"}]}}. A case's `kwargs` are the registry's answer to
GET /v1/resolve/{model}?format=litellm, passed to litellm.completion() as they are; `proxy`
is the registry's exported LiteLLM proxy `model_list` (secrets as `os.environ/VAR`), loaded
into litellm.Router with `env` as the environment. `redirect` points a provider's public
endpoint at the test's fake. Prints one JSON line per case: the answer's text and LiteLLM's
response cost, or the error's type (never its text, which may quote a key)."""

import json
import os
import sys

import litellm

MESSAGES = [{"role": "user", "content": "ping"}]


def main() -> None:
    request = json.load(sys.stdin)
    for case in request.get("cases", []):
        kwargs = dict(case["kwargs"])
        kwargs.update(case.get("redirect") or {})
        run(case["name"], lambda: litellm.completion(messages=MESSAGES, num_retries=0, **kwargs))
    proxy = request.get("proxy")
    if proxy:
        os.environ.update(proxy["env"])
        model_list = proxy["model_list"]
        for case in proxy["cases"]:
            for deployment in model_list:
                if deployment["model_name"] == case["model_name"]:
                    deployment["litellm_params"].update(case.get("redirect") or {})
        router = litellm.Router(model_list=model_list, num_retries=0)
        for case in proxy["cases"]:
            run(case["name"], lambda: router.completion(model=case["model_name"], messages=MESSAGES))


def run(name, call) -> None:
    try:
        response = call()
        answer = {
            "name": name,
            "ok": True,
            "content": response.choices[0].message.content,
            "response_cost": response._hidden_params.get("response_cost"),
        }
    except Exception as error:  # noqa: BLE001 - the test reports which case failed
        answer = {"name": name, "ok": False, "error": type(error).__name__}
    print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
