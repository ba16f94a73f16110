//! Inspection of a chat response for truncation, pure over `serde_json` values: the finish
//! reason and the tool calls of an OpenAI chat completion, an Anthropic message, a Gemini
//! `generateContent` answer, a Bedrock Converse answer, or a stream of OpenAI-style deltas
//! (tool calls aggregated by index, as LiteLLM and OpenRouter stream them).
//!
//! A response is truncated when its finish reason says the token limit stopped it
//! (`length`, `max_tokens`, `MAX_TOKENS`), or when a tool call's arguments do not parse as
//! JSON whatever the finish reason says (a provider or a proxy that reports `tool_calls` or
//! `stop` for a cut call). [`Inspection::log`] then writes the seed's line through `tracing`.

use serde_json::Value;

/// The response shapes [`inspect`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `choices[0].finish_reason`, `choices[0].message.tool_calls[].function`.
    OpenAi,
    /// `stop_reason`, `content[]` blocks of type `tool_use`.
    Anthropic,
    /// `candidates[0].finishReason`, `candidates[0].content.parts[].functionCall`.
    Gemini,
    /// `stopReason`, `output.message.content[].toolUse`.
    BedrockConverse,
}

/// One tool call the model asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolCall {
    pub id: Option<String>,
    pub name: String,
    /// The arguments as the model wrote them (JSON text, perhaps cut short).
    pub arguments: String,
}

impl ToolCall {
    /// Whether the arguments are one whole JSON value.
    pub fn arguments_parse(&self) -> bool {
        serde_json::from_str::<Value>(&self.arguments).is_ok()
    }
}

/// What a response says about how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspection {
    /// The provider's finish reason, as it wrote it.
    pub finish_reason: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    pub truncation: Option<Truncation>,
}

/// A response the token limit cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Truncation {
    /// True when the finish reason names the limit (else only arguments were cut).
    pub finish_reason_says_limit: bool,
    /// The names of the tool calls whose arguments were cut (do not parse), in order.
    pub affected_tool_calls: Vec<String>,
}

/// Finish reasons that mean the token limit stopped the answer: OpenAI's, Anthropic's and
/// Bedrock's, Gemini's.
const LIMIT_REASONS: [&str; 3] = ["length", "max_tokens", "MAX_TOKENS"];

/// Reads a whole (not streamed) response of `shape`. A value that is not of that shape reads
/// as no finish reason and no tool calls.
pub fn inspect(shape: Shape, response: &Value) -> Inspection {
    let (finish_reason, tool_calls) = match shape {
        Shape::OpenAi => openai(response),
        Shape::Anthropic => anthropic(response),
        Shape::Gemini => gemini(response),
        Shape::BedrockConverse => bedrock(response),
    };
    judge(finish_reason, tool_calls)
}

/// Aggregates a stream of OpenAI-style chunks (`choices[0].delta`): content is ignored, tool
/// calls are put together by `index` (the id and name arrive once, the arguments in pieces),
/// the last finish reason wins. A stream without `index` (Gemini's OpenAI-compatible one)
/// starts a call at each new `id`, and continues the last call otherwise.
#[derive(Default, Debug)]
pub struct StreamAggregator {
    finish_reason: Option<String>,
    /// By the stream's `index` (`None`: it gave none), in order of first appearance.
    calls: Vec<(Option<u64>, ToolCall)>,
}

impl StreamAggregator {
    /// Takes one chunk (the JSON after `data: `).
    pub fn push(&mut self, chunk: &Value) {
        let choice = &chunk["choices"][0];
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.finish_reason = Some(reason.to_owned());
        }
        let Some(deltas) = choice["delta"]["tool_calls"].as_array() else {
            return;
        };
        for delta in deltas {
            let index = delta["index"].as_u64();
            let id = delta["id"].as_str().filter(|id| !id.is_empty());
            let found = match index {
                Some(index) => self.calls.iter().position(|(i, _)| *i == Some(index)),
                None => match (self.calls.last(), id) {
                    (Some((None, last)), Some(id)) if last.id.as_deref() == Some(id) => {
                        Some(self.calls.len() - 1)
                    }
                    (Some((None, _)), None) => Some(self.calls.len() - 1),
                    _ => None,
                },
            };
            let position = found.unwrap_or_else(|| {
                self.calls.push((
                    index,
                    ToolCall {
                        id: None,
                        name: String::new(),
                        arguments: String::new(),
                    },
                ));
                self.calls.len() - 1
            });
            let call = &mut self.calls[position].1;
            if let Some(id) = id {
                call.id = Some(id.to_owned());
            }
            if let Some(name) = delta["function"]["name"].as_str() {
                call.name.push_str(name);
            }
            if let Some(piece) = delta["function"]["arguments"].as_str() {
                call.arguments.push_str(piece);
            }
        }
    }

    /// The stream's inspection, once it ended (or broke off).
    pub fn finish(self) -> Inspection {
        let calls = self.calls.into_iter().map(|(_, call)| call).collect();
        judge(self.finish_reason, calls)
    }
}

/// An LLM call as a usage record needs it, besides what the response says.
#[derive(Clone, Debug)]
pub struct Call<'a> {
    /// The record's id, unique per call (a retry of the report sends it again).
    pub id: &'a str,
    /// The model's slug or platform id.
    pub model: &'a str,
    pub workflow: &'a str,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub round: Option<u32>,
    /// When the call was made, RFC 3339.
    pub called_at: &'a str,
}

impl Inspection {
    /// The usage record of `call` with what this response says: its finish reason and, on a
    /// truncation, the names of the cut tool calls (never their arguments). Sent with
    /// [`crate::Client::report`], a truncation reaches the model's answer in the registry.
    pub fn usage(&self, call: &Call<'_>) -> api::UsageRecord {
        let tokens = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        api::UsageRecord {
            id: call.id.to_owned(),
            model: call.model.to_owned(),
            workflow: call.workflow.to_owned(),
            input_tokens: tokens(call.input_tokens),
            output_tokens: tokens(call.output_tokens),
            finish_reason: self.finish_reason.clone(),
            truncated_tool_calls: self
                .truncation
                .as_ref()
                .map(|t| t.affected_tool_calls.clone())
                .unwrap_or_default(),
            round: call.round.map(i64::from),
            called_at: call.called_at.to_owned(),
        }
    }

    /// Writes the seed's line when the response was truncated, through `tracing` at warn:
    /// exactly `TOOL-LOOP round N: model=<slug> hit max_tokens (finish_reason=length)`, with
    /// the affected tool calls' names in `tool_calls` (comma-separated) and the provider's
    /// own reason in `provider_finish_reason`. The reason in the line is always `length`, the
    /// name LiteLLM gives every provider's limit. Answers whether it wrote it.
    pub fn log(&self, round: u32, model: &str) -> bool {
        let Some(truncation) = &self.truncation else {
            return false;
        };
        tracing::warn!(
            tool_calls = %truncation.affected_tool_calls.join(", "),
            provider_finish_reason = self.finish_reason.as_deref().unwrap_or(""),
            "TOOL-LOOP round {round}: model={model} hit max_tokens (finish_reason=length)"
        );
        true
    }
}

fn judge(finish_reason: Option<String>, tool_calls: Vec<ToolCall>) -> Inspection {
    let limit = finish_reason
        .as_deref()
        .is_some_and(|reason| LIMIT_REASONS.contains(&reason));
    let affected: Vec<String> = tool_calls
        .iter()
        .filter(|call| !call.arguments_parse())
        .map(|call| call.name.clone())
        .collect();
    let truncation = (limit || !affected.is_empty()).then_some(Truncation {
        finish_reason_says_limit: limit,
        affected_tool_calls: affected,
    });
    Inspection {
        finish_reason,
        tool_calls,
        truncation,
    }
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

/// Arguments given as a JSON value (Anthropic, Gemini, Bedrock) as text; a string stays as
/// it is (a proxy that passes the raw, perhaps cut, text on).
fn arguments(value: &Value) -> String {
    match value {
        Value::String(raw) => raw.clone(),
        Value::Null => "{}".to_owned(),
        other => other.to_string(),
    }
}

fn openai(response: &Value) -> (Option<String>, Vec<ToolCall>) {
    let choice = &response["choices"][0];
    let calls = choice["message"]["tool_calls"]
        .as_array()
        .map(|calls| {
            calls
                .iter()
                .map(|call| ToolCall {
                    id: text(&call["id"]),
                    name: text(&call["function"]["name"]).unwrap_or_default(),
                    arguments: text(&call["function"]["arguments"]).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    (text(&choice["finish_reason"]), calls)
}

fn anthropic(response: &Value) -> (Option<String>, Vec<ToolCall>) {
    let calls = blocks(&response["content"])
        .filter(|block| block["type"] == "tool_use")
        .map(|block| ToolCall {
            id: text(&block["id"]),
            name: text(&block["name"]).unwrap_or_default(),
            arguments: arguments(&block["input"]),
        })
        .collect();
    (text(&response["stop_reason"]), calls)
}

fn gemini(response: &Value) -> (Option<String>, Vec<ToolCall>) {
    let candidate = &response["candidates"][0];
    let calls = blocks(&candidate["content"]["parts"])
        .filter(|part| part["functionCall"].is_object())
        .map(|part| ToolCall {
            id: text(&part["functionCall"]["id"]),
            name: text(&part["functionCall"]["name"]).unwrap_or_default(),
            arguments: arguments(&part["functionCall"]["args"]),
        })
        .collect();
    (text(&candidate["finishReason"]), calls)
}

fn bedrock(response: &Value) -> (Option<String>, Vec<ToolCall>) {
    let calls = blocks(&response["output"]["message"]["content"])
        .filter(|block| block["toolUse"].is_object())
        .map(|block| ToolCall {
            id: text(&block["toolUse"]["toolUseId"]),
            name: text(&block["toolUse"]["name"]).unwrap_or_default(),
            arguments: arguments(&block["toolUse"]["input"]),
        })
        .collect();
    (text(&response["stopReason"]), calls)
}

fn blocks(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing_subscriber::layer::{Context, SubscriberExt};

    use super::*;

    fn recorded(name: &str) -> Value {
        let path = format!("{}/tests/responses/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn stream(name: &str) -> Vec<Value> {
        let path = format!("{}/tests/responses/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{path}: {e}")))
            .collect()
    }

    /// One event's message and fields, as a subscriber sees them.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    struct Logged {
        level: String,
        message: String,
        fields: Vec<(String, String)>,
    }

    struct Capture(Arc<Mutex<Vec<Logged>>>);

    impl Visit for Logged {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            let value = format!("{value:?}");
            if field.name() == "message" {
                self.message = value;
            } else {
                self.fields.push((field.name().to_owned(), value));
            }
        }

        fn record_str(&mut self, field: &Field, value: &str) {
            self.fields
                .push((field.name().to_owned(), value.to_owned()));
        }
    }

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            let mut logged = Logged {
                level: event.metadata().level().to_string(),
                ..Logged::default()
            };
            event.record(&mut logged);
            if let Ok(mut all) = self.0.lock() {
                all.push(logged);
            }
        }
    }

    /// What `inspection.log(round, model)` writes.
    fn logged(inspection: &Inspection, round: u32, model: &str) -> Vec<Logged> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Capture(Arc::clone(&seen)));
        tracing::subscriber::with_default(subscriber, || inspection.log(round, model));
        seen.lock().expect("log").clone()
    }

    /// A recorded response, its shape, finish reason, tool calls, whether it was truncated,
    /// and the cut calls.
    type Row = (
        &'static str,
        Shape,
        &'static str,
        &'static [&'static str],
        bool,
        &'static [&'static str],
    );

    #[test]
    fn recorded_responses_of_each_provider() {
        // (recorded response, its shape, finish reason, tool calls, truncated, affected)
        let table: [Row; 8] = [
            (
                "openai_tool_calls_length.json",
                Shape::OpenAi,
                "length",
                &["read_file", "write_file"],
                true,
                &["write_file"],
            ),
            (
                "openai_stop.json",
                Shape::OpenAi,
                "tool_calls",
                &["read_file"],
                false,
                &[],
            ),
            (
                "anthropic_max_tokens.json",
                Shape::Anthropic,
                "max_tokens",
                &["write_file"],
                true,
                &[],
            ),
            (
                "anthropic_end_turn.json",
                Shape::Anthropic,
                "end_turn",
                &[],
                false,
                &[],
            ),
            (
                "gemini_max_tokens.json",
                Shape::Gemini,
                "MAX_TOKENS",
                &["search_code"],
                true,
                &[],
            ),
            ("gemini_stop.json", Shape::Gemini, "STOP", &[], false, &[]),
            (
                "bedrock_max_tokens.json",
                Shape::BedrockConverse,
                "max_tokens",
                &["apply_patch"],
                true,
                &[],
            ),
            (
                "bedrock_tool_use.json",
                Shape::BedrockConverse,
                "tool_use",
                &["list_dir"],
                false,
                &[],
            ),
        ];
        for (file, shape, reason, calls, truncated, affected) in table {
            let inspection = inspect(shape, &recorded(file));
            assert_eq!(inspection.finish_reason.as_deref(), Some(reason), "{file}");
            let names: Vec<&str> = inspection
                .tool_calls
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            assert_eq!(names, calls, "{file}");
            assert_eq!(inspection.truncation.is_some(), truncated, "{file}");
            if let Some(truncation) = &inspection.truncation {
                assert!(truncation.finish_reason_says_limit, "{file}");
                assert_eq!(truncation.affected_tool_calls, affected, "{file}");
            }
            let lines = logged(&inspection, 3, "coder");
            assert_eq!(lines.len(), usize::from(truncated), "{file}: {lines:?}");
        }
    }

    /// Gemini's OpenAI-compatible stream gives tool calls no `index`: two parallel calls
    /// were put together as one, whose arguments did not parse, and reported as cut.
    #[test]
    fn a_stream_without_indexes_keeps_parallel_calls_apart() {
        let mut aggregator = StreamAggregator::default();
        let chunks = [
            serde_json::json!({"choices": [{"delta": {"tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "read_file", "arguments": "{\"path\": "}}]}}]}),
            serde_json::json!({"choices": [{"delta": {"tool_calls": [{"function": {"arguments": "\"a.rs\"}"}}]}}]}),
            serde_json::json!({"choices": [{"delta": {"tool_calls": [{"id": "call_2", "type": "function",
                "function": {"name": "read_file", "arguments": "{\"path\": \"b.rs\"}"}}]}}]}),
            serde_json::json!({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]}),
        ];
        for chunk in &chunks {
            aggregator.push(chunk);
        }
        let inspection = aggregator.finish();
        let calls: Vec<(Option<&str>, &str, &str)> = inspection
            .tool_calls
            .iter()
            .map(|c| (c.id.as_deref(), c.name.as_str(), c.arguments.as_str()))
            .collect();
        assert_eq!(
            calls,
            [
                (Some("call_1"), "read_file", r#"{"path": "a.rs"}"#),
                (Some("call_2"), "read_file", r#"{"path": "b.rs"}"#),
            ]
        );
        assert_eq!(inspection.truncation, None);
    }

    #[test]
    fn a_stream_whose_second_of_three_parallel_calls_is_cut() {
        let mut aggregator = StreamAggregator::default();
        for chunk in stream("openai_stream_parallel_cut.jsonl") {
            aggregator.push(&chunk);
        }
        let inspection = aggregator.finish();
        let calls: Vec<(Option<&str>, &str)> = inspection
            .tool_calls
            .iter()
            .map(|c| (c.id.as_deref(), c.name.as_str()))
            .collect();
        assert_eq!(
            calls,
            [
                (Some("call_a"), "read_file"),
                (Some("call_b"), "write_file"),
                (Some("call_c"), "run_tests")
            ]
        );
        assert_eq!(
            inspection.tool_calls[0].arguments,
            r#"{"path": "src/lib.rs"}"#
        );
        assert!(inspection.tool_calls[2].arguments_parse());
        // The stream says `tool_calls`, but the second call's arguments stop mid-string.
        assert_eq!(inspection.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(
            inspection.truncation,
            Some(Truncation {
                finish_reason_says_limit: false,
                affected_tool_calls: vec!["write_file".into()],
            })
        );
        assert_eq!(
            logged(&inspection, 7, "team-coder"),
            [Logged {
                level: "WARN".into(),
                message:
                    "TOOL-LOOP round 7: model=team-coder hit max_tokens (finish_reason=length)"
                        .into(),
                fields: vec![
                    ("tool_calls".into(), "write_file".into()),
                    ("provider_finish_reason".into(), "tool_calls".into()),
                ],
            }]
        );
    }

    #[test]
    fn the_line_names_every_affected_call_and_the_providers_reason() {
        let inspection = inspect(Shape::OpenAi, &recorded("openai_tool_calls_length.json"));
        let lines = logged(&inspection, 2, "m");
        assert_eq!(
            lines[0].message,
            "TOOL-LOOP round 2: model=m hit max_tokens (finish_reason=length)"
        );
        assert_eq!(
            lines[0].fields,
            [
                ("tool_calls".to_owned(), "write_file".to_owned()),
                ("provider_finish_reason".to_owned(), "length".to_owned())
            ]
        );
        // Two cut calls in a stream that ends on `length`, named in order.
        let mut aggregator = StreamAggregator::default();
        for (index, name) in [(0, "a"), (1, "b")] {
            aggregator.push(&serde_json::json!({"choices": [{"delta": {"tool_calls": [
                {"index": index, "id": format!("call_{name}"), "function": {"name": name, "arguments": "{\"x\": "}}
            ]}}]}));
        }
        aggregator
            .push(&serde_json::json!({"choices": [{"delta": {}, "finish_reason": "length"}]}));
        let inspection = aggregator.finish();
        assert_eq!(logged(&inspection, 1, "m")[0].fields[0].1, "a, b");
        // Nothing is logged for a whole answer.
        let whole = inspect(Shape::OpenAi, &recorded("openai_stop.json"));
        assert!(!whole.log(1, "m") && logged(&whole, 1, "m").is_empty());
    }
}
