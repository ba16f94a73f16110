"""Calls litellm.completion() once per case read from stdin, as the conformance test
(tests/it/litellm.rs) asks: {"cases": [{"name", "kwargs", "redirect"}]}, where `kwargs` are
the registry's answer to GET /v1/resolve/{model}?format=litellm, passed as they are, and
`redirect` points a provider's public endpoint at the test's fake. Prints one JSON line per
case: the answer's text and LiteLLM's response cost, or the error's type (never its text,
which may quote a key)."""

import json
import sys

import litellm


def main() -> None:
    request = json.load(sys.stdin)
    for case in request["cases"]:
        kwargs = dict(case["kwargs"])
        kwargs.update(case.get("redirect") or {})
        try:
            response = litellm.completion(
                messages=[{"role": "user", "content": "ping"}], num_retries=0, **kwargs
            )
            print(
                json.dumps(
                    {
                        "name": case["name"],
                        "ok": True,
                        "content": response.choices[0].message.content,
                        "response_cost": response._hidden_params.get("response_cost"),
                    }
                ),
                flush=True,
            )
        except Exception as error:  # noqa: BLE001 - the test reports which case failed
            print(
                json.dumps({"name": case["name"], "ok": False, "error": type(error).__name__}),
                flush=True,
            )


if __name__ == "__main__":
    main()
